-- +goose NO TRANSACTION
-- +goose Up
-- SQLite twin of postgres/00003. SQLite cannot alter a CHECK constraint, so the inbox is
-- rebuilt the documented way (https://sqlite.org/lang_altertable.html, "other kinds of
-- table schema changes"): foreign keys off, copy into a new table, drop, rename. It is
-- one statement block so that it runs on one connection, in one transaction, and it can
-- run again if the process died after its COMMIT and before goose recorded it.
-- +goose StatementBegin
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;
DROP TABLE IF EXISTS inbox_new;
CREATE TABLE inbox_new (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    property     TEXT        NOT NULL,
    source       TEXT        NOT NULL,
    dedupe_key   TEXT        NOT NULL,
    user_id      TEXT        NOT NULL DEFAULT '',
    kind         TEXT        NOT NULL,
    event_type   TEXT        NOT NULL DEFAULT '',
    raw_body     BLOB        NOT NULL,
    event        TEXT        NOT NULL,
    received_at  DATETIME    NOT NULL,
    status       TEXT        NOT NULL CHECK (status IN ('recorded', 'applied', 'quarantined')),
    reason       TEXT        NOT NULL DEFAULT '',
    applied_at   DATETIME   ,
    CONSTRAINT inbox_dedupe UNIQUE (property, source, dedupe_key)
);
INSERT INTO inbox_new (id, property, source, dedupe_key, user_id, kind, event_type, raw_body, event, received_at, status, reason, applied_at)
    SELECT id, property, source, dedupe_key, user_id, kind, event_type, raw_body, event, received_at, status, reason, applied_at FROM inbox;
DROP TABLE inbox;
ALTER TABLE inbox_new RENAME TO inbox;
CREATE INDEX IF NOT EXISTS inbox_quarantined ON inbox (property, id) WHERE status = 'quarantined';
CREATE INDEX IF NOT EXISTS inbox_recorded ON inbox (id) WHERE status = 'recorded';
CREATE INDEX IF NOT EXISTS journal_inbox ON journal (inbox_id) WHERE inbox_id IS NOT NULL;
COMMIT;
PRAGMA foreign_keys = ON;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
DROP INDEX journal_inbox;
DROP INDEX inbox_recorded;
-- +goose StatementEnd
