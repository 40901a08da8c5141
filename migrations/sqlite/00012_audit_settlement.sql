-- +goose Up
-- SQLite twin of postgres/00012: the audit log accepts action 'settlement'. SQLite cannot
-- change a CHECK constraint in place, so the table is rebuilt with its rows and ids (and
-- its AUTOINCREMENT high-water mark, which follows the copied rows) and its
-- append-only triggers are created again. Dropping a table fires no DELETE trigger.
CREATE TABLE audit_next (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    actor      TEXT     NOT NULL,
    action     TEXT     NOT NULL CHECK (action IN ('adjustment', 'reversal', 'replay', 'trueup', 'booked_revenue', 'webhook_retry', 'settlement')),
    property   TEXT     NOT NULL,
    target     TEXT     NOT NULL,
    reason     TEXT     NOT NULL DEFAULT '',
    detail     TEXT     NOT NULL DEFAULT '',
    created_at DATETIME NOT NULL
);
INSERT INTO audit_next (id, actor, action, property, target, reason, detail, created_at)
    SELECT id, actor, action, property, target, reason, detail, created_at FROM audit ORDER BY id;
DROP TABLE audit;
ALTER TABLE audit_next RENAME TO audit;
-- +goose StatementBegin
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'table audit is append-only'); END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'table audit is append-only'); END;
-- +goose StatementEnd

-- +goose Down
-- The audit log is append-only: 'settlement' rows written since stay, and so does the
-- check that admits them.
SELECT 1;
