-- +goose Up
-- Reversals: a redemption returned to the user's available balance. The unique
-- redemption_id is the guarantee that a redemption is reversed at most once; the unique
-- (property, idempotency_key) makes retries of one request answer the same.
CREATE TABLE reversals (
    id              BIGSERIAL PRIMARY KEY,
    property        TEXT           NOT NULL,
    user_id         TEXT           NOT NULL,
    redemption_id   BIGINT         NOT NULL REFERENCES redemptions (id),
    amount          NUMERIC(38,18) NOT NULL CHECK (amount > 0),
    reason          TEXT           NOT NULL CHECK (reason <> ''),
    actor           TEXT           NOT NULL,
    idempotency_key TEXT           NOT NULL,
    request_hash    TEXT           NOT NULL,
    available_after NUMERIC(38,18) NOT NULL,
    pending_after   NUMERIC(38,18) NOT NULL,
    redeemed_after  NUMERIC(38,18) NOT NULL,
    lifetime_after  NUMERIC(38,18) NOT NULL,
    created_at      TIMESTAMPTZ    NOT NULL,
    CONSTRAINT reversals_redemption UNIQUE (redemption_id),
    CONSTRAINT reversals_key UNIQUE (property, idempotency_key)
);

-- Audit: who did what to money or the inbox, written in the transaction that did it.
CREATE TABLE audit (
    id         BIGSERIAL PRIMARY KEY,
    actor      TEXT        NOT NULL,
    action     TEXT        NOT NULL CHECK (action IN ('adjustment', 'reversal', 'replay', 'trueup', 'booked_revenue', 'webhook_retry')),
    property   TEXT        NOT NULL,
    target     TEXT        NOT NULL,
    reason     TEXT        NOT NULL DEFAULT '',
    detail     TEXT        NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL
);
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION tally_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION tally_append_only();

-- +goose Down
DROP TABLE audit;
DROP TABLE reversals;
