-- +goose Up
-- SQLite twin of postgres/00005: money is TEXT and summed in Go.
CREATE TABLE reversals (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    property        TEXT     NOT NULL,
    user_id         TEXT     NOT NULL,
    redemption_id   INTEGER  NOT NULL REFERENCES redemptions (id),
    amount          TEXT     NOT NULL,
    reason          TEXT     NOT NULL CHECK (reason <> ''),
    actor           TEXT     NOT NULL,
    idempotency_key TEXT     NOT NULL,
    request_hash    TEXT     NOT NULL,
    available_after TEXT     NOT NULL,
    pending_after   TEXT     NOT NULL,
    redeemed_after  TEXT     NOT NULL,
    lifetime_after  TEXT     NOT NULL,
    created_at      DATETIME NOT NULL,
    CONSTRAINT reversals_redemption UNIQUE (redemption_id),
    CONSTRAINT reversals_key UNIQUE (property, idempotency_key)
);

CREATE TABLE audit (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    actor      TEXT     NOT NULL,
    action     TEXT     NOT NULL CHECK (action IN ('adjustment', 'reversal', 'replay', 'trueup', 'booked_revenue', 'webhook_retry')),
    property   TEXT     NOT NULL,
    target     TEXT     NOT NULL,
    reason     TEXT     NOT NULL DEFAULT '',
    detail     TEXT     NOT NULL DEFAULT '',
    created_at DATETIME NOT NULL
);
-- +goose StatementBegin
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'table audit is append-only'); END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'table audit is append-only'); END;
-- +goose StatementEnd

-- +goose Down
DROP TABLE audit;
DROP TABLE reversals;
