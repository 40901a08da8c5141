-- +goose Up
-- SQLite twin of postgres/00002: money is TEXT and summed in Go.
-- Settlement runs: one row per run and property; counters grow with each committed batch.
CREATE TABLE settlements (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    property    TEXT     NOT NULL,
    status      TEXT     NOT NULL CHECK (status IN ('running', 'completed', 'failed', 'abandoned')),
    started_at  DATETIME NOT NULL,
    finished_at DATETIME,
    users       INTEGER  NOT NULL DEFAULT 0,
    entries     INTEGER  NOT NULL DEFAULT 0,
    amount      TEXT     NOT NULL DEFAULT '0',
    error       TEXT     NOT NULL DEFAULT ''
);
CREATE INDEX settlements_running ON settlements (property) WHERE status = 'running';

-- Leases keep replicas from doing the same work at once. Correctness never depends on
-- them: a lot is settled by the UPDATE that sets its settlement_id.
CREATE TABLE leases (
    name       TEXT     PRIMARY KEY,
    holder     TEXT     NOT NULL,
    expires_at DATETIME NOT NULL
);

-- (lots.amount has no sign check on SQLite; a pending debit adjustment is a negative lot.)

-- Redemptions and adjustments; the unique key is the idempotency guarantee.
CREATE TABLE redemptions (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    property        TEXT     NOT NULL,
    user_id         TEXT     NOT NULL,
    amount          TEXT     NOT NULL,
    reference       TEXT     NOT NULL DEFAULT '',
    idempotency_key TEXT     NOT NULL,
    request_hash    TEXT     NOT NULL,
    available_after TEXT     NOT NULL,
    pending_after   TEXT     NOT NULL,
    redeemed_after  TEXT     NOT NULL,
    lifetime_after  TEXT     NOT NULL,
    created_at      DATETIME NOT NULL,
    CONSTRAINT redemptions_key UNIQUE (property, idempotency_key)
);
CREATE INDEX redemptions_user ON redemptions (property, user_id, id);

CREATE TABLE adjustments (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    property        TEXT     NOT NULL,
    user_id         TEXT     NOT NULL,
    amount          TEXT     NOT NULL,
    bucket          TEXT     NOT NULL CHECK (bucket IN ('available', 'pending')),
    reason          TEXT     NOT NULL CHECK (reason <> ''),
    actor           TEXT     NOT NULL DEFAULT '',
    idempotency_key TEXT     NOT NULL,
    request_hash    TEXT     NOT NULL,
    available_after TEXT     NOT NULL,
    pending_after   TEXT     NOT NULL,
    redeemed_after  TEXT     NOT NULL,
    lifetime_after  TEXT     NOT NULL,
    created_at      DATETIME NOT NULL,
    CONSTRAINT adjustments_key UNIQUE (property, idempotency_key)
);
CREATE INDEX adjustments_user ON adjustments (property, user_id, id);

-- Balance feed: writers are serialized (immediate transactions), so a counter bumped
-- inside each writing transaction orders changes in commit order.
ALTER TABLE wallets ADD COLUMN feed_seq INTEGER NOT NULL DEFAULT 0;
CREATE INDEX wallets_feed ON wallets (property, feed_seq, id);
CREATE TABLE feed_counter (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL
);
INSERT INTO feed_counter (id, seq) VALUES (1, 0);

-- +goose Down
DROP TABLE feed_counter;
DROP INDEX wallets_feed;
ALTER TABLE wallets DROP COLUMN feed_seq;
DROP TABLE adjustments;
DROP TABLE redemptions;
DROP TABLE leases;
DROP TABLE settlements;
