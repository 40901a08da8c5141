-- +goose Up
-- SQLite twin of postgres/00001: money is TEXT (SQLite NUMERIC is a float) and is summed in Go.
-- Inbox: every authenticated event exactly as received, unique per (property, source, dedupe key).
CREATE TABLE inbox (
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
    status       TEXT        NOT NULL CHECK (status IN ('applied', 'quarantined')),
    reason       TEXT        NOT NULL DEFAULT '',
    applied_at   DATETIME   ,
    CONSTRAINT inbox_dedupe UNIQUE (property, source, dedupe_key)
);
CREATE INDEX inbox_quarantined ON inbox (property, id) WHERE status = 'quarantined';

-- Wallets: one running-balance row per (property, user). System accounts have no row.
CREATE TABLE wallets (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    property        TEXT           NOT NULL,
    user_id         TEXT           NOT NULL,
    pending         TEXT    NOT NULL DEFAULT '0',
    available       TEXT    NOT NULL DEFAULT '0',
    carry           TEXT    NOT NULL DEFAULT '0',
    redeemed        TEXT    NOT NULL DEFAULT '0',
    lifetime_earned TEXT    NOT NULL DEFAULT '0',
    created_at      DATETIME       NOT NULL,
    updated_at      DATETIME       NOT NULL,
    CONSTRAINT wallets_user UNIQUE (property, user_id)
);

-- Journal: one row per balanced entry; entries: its legs. Both append-only. No index on
-- journal.inbox_id or entries.journal_id: no hot query needs one, and every index here
-- is paid on each ingested event.
CREATE TABLE journal (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    property     TEXT        NOT NULL,
    user_id      TEXT        NOT NULL,
    kind         TEXT        NOT NULL,
    rule         TEXT        NOT NULL,
    rule_version TEXT        NOT NULL DEFAULT '',
    inbox_id     INTEGER      REFERENCES inbox (id),
    ref          TEXT        NOT NULL DEFAULT '',
    matures_at   DATETIME   ,
    created_at   DATETIME    NOT NULL
);

CREATE TABLE entries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    journal_id  INTEGER         NOT NULL REFERENCES journal (id),
    property    TEXT           NOT NULL,
    user_id     TEXT           NOT NULL,
    account     TEXT           NOT NULL DEFAULT '', -- '' for the user's wallet, else a system account
    bucket      TEXT           NOT NULL DEFAULT '',
    kind        TEXT           NOT NULL,
    amount      TEXT    NOT NULL,
    created_at  DATETIME       NOT NULL,
    CHECK ((account = '') = (bucket <> ''))
);
CREATE INDEX entries_user ON entries (property, user_id, id);
CREATE INDEX entries_created ON entries (created_at);

-- +goose StatementBegin
CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal BEGIN SELECT RAISE(ABORT, 'table journal is append-only'); END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal BEGIN SELECT RAISE(ABORT, 'table journal is append-only'); END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries BEGIN SELECT RAISE(ABORT, 'table entries is append-only'); END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries BEGIN SELECT RAISE(ABORT, 'table entries is append-only'); END;
-- +goose StatementEnd

-- Claims make a reward payable at most once per (property, user, claim).
CREATE TABLE claims (
    property   TEXT        NOT NULL,
    user_id    TEXT        NOT NULL,
    claim      TEXT        NOT NULL,
    journal_id INTEGER      NOT NULL REFERENCES journal (id),
    created_at DATETIME    NOT NULL,
    PRIMARY KEY (property, user_id, claim)
);

-- Deleting a claim would make a once-only reward payable again.
-- +goose StatementBegin
CREATE TRIGGER claims_no_update BEFORE UPDATE ON claims BEGIN SELECT RAISE(ABORT, 'table claims is append-only'); END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER claims_no_delete BEFORE DELETE ON claims BEGIN SELECT RAISE(ABORT, 'table claims is append-only'); END;
-- +goose StatementEnd

-- Lots: pending credits waiting to mature; settlement_id is set once, when settled.
CREATE TABLE lots (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    wallet_id     INTEGER         NOT NULL REFERENCES wallets (id),
    journal_id    INTEGER         NOT NULL REFERENCES journal (id),
    amount        TEXT    NOT NULL,
    matures_at    DATETIME       NOT NULL,
    settlement_id INTEGER
);
CREATE INDEX lots_unsettled ON lots (matures_at, wallet_id) WHERE settlement_id IS NULL;
CREATE INDEX lots_wallet ON lots (wallet_id) WHERE settlement_id IS NULL;

-- Revenue credited per user and UTC day of receipt, for per_user_per_day caps.
CREATE TABLE user_days (
    wallet_id        INTEGER         NOT NULL REFERENCES wallets (id),
    day              TEXT           NOT NULL,
    revenue_credited TEXT    NOT NULL,
    PRIMARY KEY (wallet_id, day)
);

-- Sessions: what each SPP session estimated and what became of it.
CREATE TABLE sessions (
    inbox_id         INTEGER         PRIMARY KEY REFERENCES inbox (id),
    property         TEXT           NOT NULL,
    user_id          TEXT           NOT NULL,
    session_id       TEXT           NOT NULL,
    country          TEXT           NOT NULL DEFAULT '',
    duration_seconds INTEGER         NOT NULL,
    revenue_usd      TEXT    NOT NULL,
    gross            TEXT    NOT NULL,
    withheld         TEXT    NOT NULL,
    credited         TEXT    NOT NULL,
    capped_excess    TEXT    NOT NULL,
    reason           TEXT           NOT NULL DEFAULT '',
    received_at      DATETIME       NOT NULL
);
CREATE INDEX sessions_user ON sessions (property, user_id, received_at);
CREATE INDEX sessions_received ON sessions (received_at);

-- +goose Down
DROP TABLE sessions;
DROP TABLE user_days;
DROP TABLE lots;
DROP TABLE claims;
DROP TABLE entries;
DROP TABLE journal;
DROP TABLE wallets;
DROP TABLE inbox;
