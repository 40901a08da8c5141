-- +goose Up
-- Settlement runs: one row per run and property; counters grow with each committed batch.
CREATE TABLE settlements (
    id          BIGSERIAL PRIMARY KEY,
    property    TEXT           NOT NULL,
    status      TEXT           NOT NULL CHECK (status IN ('running', 'completed', 'failed', 'abandoned')),
    started_at  TIMESTAMPTZ    NOT NULL,
    finished_at TIMESTAMPTZ,
    users       BIGINT         NOT NULL DEFAULT 0,
    entries     BIGINT         NOT NULL DEFAULT 0,
    amount      NUMERIC(38,18) NOT NULL DEFAULT 0,
    error       TEXT           NOT NULL DEFAULT ''
);
CREATE INDEX settlements_running ON settlements (property) WHERE status = 'running';

-- Leases keep replicas from doing the same work at once. Correctness never depends on
-- them: a lot is settled by the UPDATE that sets its settlement_id.
CREATE TABLE leases (
    name       TEXT        PRIMARY KEY,
    holder     TEXT        NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);

-- A pending adjustment is a lot too, negative for a debit.
ALTER TABLE lots DROP CONSTRAINT lots_amount_check;
ALTER TABLE lots ADD CONSTRAINT lots_amount_nonzero CHECK (amount <> 0);

-- Redemptions and adjustments; the unique key is the idempotency guarantee.
CREATE TABLE redemptions (
    id              BIGSERIAL PRIMARY KEY,
    property        TEXT           NOT NULL,
    user_id         TEXT           NOT NULL,
    amount          NUMERIC(38,18) NOT NULL CHECK (amount > 0),
    reference       TEXT           NOT NULL DEFAULT '',
    idempotency_key TEXT           NOT NULL,
    request_hash    TEXT           NOT NULL,
    available_after NUMERIC(38,18) NOT NULL,
    pending_after   NUMERIC(38,18) NOT NULL,
    redeemed_after  NUMERIC(38,18) NOT NULL,
    lifetime_after  NUMERIC(38,18) NOT NULL,
    created_at      TIMESTAMPTZ    NOT NULL,
    CONSTRAINT redemptions_key UNIQUE (property, idempotency_key)
);
CREATE INDEX redemptions_user ON redemptions (property, user_id, id);

CREATE TABLE adjustments (
    id              BIGSERIAL PRIMARY KEY,
    property        TEXT           NOT NULL,
    user_id         TEXT           NOT NULL,
    amount          NUMERIC(38,18) NOT NULL CHECK (amount <> 0),
    bucket          TEXT           NOT NULL CHECK (bucket IN ('available', 'pending')),
    reason          TEXT           NOT NULL CHECK (reason <> ''),
    actor           TEXT           NOT NULL DEFAULT '',
    idempotency_key TEXT           NOT NULL,
    request_hash    TEXT           NOT NULL,
    available_after NUMERIC(38,18) NOT NULL,
    pending_after   NUMERIC(38,18) NOT NULL,
    redeemed_after  NUMERIC(38,18) NOT NULL,
    lifetime_after  NUMERIC(38,18) NOT NULL,
    created_at      TIMESTAMPTZ    NOT NULL,
    CONSTRAINT adjustments_key UNIQUE (property, idempotency_key)
);
CREATE INDEX adjustments_user ON adjustments (property, user_id, id);

-- Balance feed: each wallet write stamps the writing transaction's id. A reader returns
-- only stamps below its snapshot's xmin, where every writer has finished, so a cursor
-- never passes a change that commits later.
ALTER TABLE wallets ADD COLUMN feed_seq BIGINT NOT NULL DEFAULT 0;
CREATE INDEX wallets_feed ON wallets (property, feed_seq, id);

-- +goose Down
DROP INDEX wallets_feed;
ALTER TABLE wallets DROP COLUMN feed_seq;
DROP TABLE adjustments;
DROP TABLE redemptions;
ALTER TABLE lots DROP CONSTRAINT lots_amount_nonzero;
ALTER TABLE lots ADD CONSTRAINT lots_amount_check CHECK (amount > 0);
DROP TABLE leases;
DROP TABLE settlements;
