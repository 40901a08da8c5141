-- +goose Up
-- Inbox: every authenticated event exactly as received, unique per (property, source, dedupe key).
CREATE TABLE inbox (
    id           BIGSERIAL PRIMARY KEY,
    property     TEXT        NOT NULL,
    source       TEXT        NOT NULL,
    dedupe_key   TEXT        NOT NULL,
    user_id      TEXT        NOT NULL DEFAULT '',
    kind         TEXT        NOT NULL,
    event_type   TEXT        NOT NULL DEFAULT '',
    raw_body     BYTEA       NOT NULL,
    event        TEXT        NOT NULL,
    received_at  TIMESTAMPTZ NOT NULL,
    status       TEXT        NOT NULL CHECK (status IN ('applied', 'quarantined')),
    reason       TEXT        NOT NULL DEFAULT '',
    applied_at   TIMESTAMPTZ,
    CONSTRAINT inbox_dedupe UNIQUE (property, source, dedupe_key)
);
CREATE INDEX inbox_quarantined ON inbox (property, id) WHERE status = 'quarantined';

-- Wallets: one running-balance row per (property, user). System accounts have no row.
CREATE TABLE wallets (
    id              BIGSERIAL PRIMARY KEY,
    property        TEXT           NOT NULL,
    user_id         TEXT           NOT NULL,
    pending         NUMERIC(38,18) NOT NULL DEFAULT 0 CHECK (pending >= 0),
    available       NUMERIC(38,18) NOT NULL DEFAULT 0 CHECK (available >= 0),
    carry           NUMERIC(38,18) NOT NULL DEFAULT 0 CHECK (carry >= 0),
    redeemed        NUMERIC(38,18) NOT NULL DEFAULT 0,
    lifetime_earned NUMERIC(38,18) NOT NULL DEFAULT 0,
    created_at      TIMESTAMPTZ    NOT NULL,
    updated_at      TIMESTAMPTZ    NOT NULL,
    CONSTRAINT wallets_user UNIQUE (property, user_id)
);

-- Journal: one row per balanced entry; entries: its legs. Both append-only. No index on
-- journal.inbox_id or entries.journal_id: no hot query needs one, and every index here
-- is paid on each ingested event.
CREATE TABLE journal (
    id           BIGSERIAL PRIMARY KEY,
    property     TEXT        NOT NULL,
    user_id      TEXT        NOT NULL,
    kind         TEXT        NOT NULL,
    rule         TEXT        NOT NULL,
    rule_version TEXT        NOT NULL DEFAULT '',
    inbox_id     BIGINT      REFERENCES inbox (id),
    ref          TEXT        NOT NULL DEFAULT '',
    matures_at   TIMESTAMPTZ,
    created_at   TIMESTAMPTZ NOT NULL
);

CREATE TABLE entries (
    id          BIGSERIAL PRIMARY KEY,
    journal_id  BIGINT         NOT NULL REFERENCES journal (id),
    property    TEXT           NOT NULL,
    user_id     TEXT           NOT NULL,
    account     TEXT           NOT NULL DEFAULT '', -- '' for the user's wallet, else a system account
    bucket      TEXT           NOT NULL DEFAULT '',
    kind        TEXT           NOT NULL,
    amount      NUMERIC(38,18) NOT NULL,
    created_at  TIMESTAMPTZ    NOT NULL,
    CHECK ((account = '') = (bucket <> ''))
);
CREATE INDEX entries_user ON entries (property, user_id, id);
CREATE INDEX entries_created ON entries (created_at);

-- +goose StatementBegin
CREATE FUNCTION tally_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'table % is append-only', TG_TABLE_NAME;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER journal_append_only BEFORE UPDATE OR DELETE ON journal
    FOR EACH ROW EXECUTE FUNCTION tally_append_only();
CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE ON entries
    FOR EACH ROW EXECUTE FUNCTION tally_append_only();

-- Claims make a reward payable at most once per (property, user, claim).
CREATE TABLE claims (
    property   TEXT        NOT NULL,
    user_id    TEXT        NOT NULL,
    claim      TEXT        NOT NULL,
    journal_id BIGINT      NOT NULL REFERENCES journal (id),
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (property, user_id, claim)
);

-- Row triggers do not fire on TRUNCATE; statement triggers close that door. Claims are
-- protected too: deleting one would make a once-only reward payable again.
CREATE TRIGGER journal_no_truncate BEFORE TRUNCATE ON journal
    FOR EACH STATEMENT EXECUTE FUNCTION tally_append_only();
CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON entries
    FOR EACH STATEMENT EXECUTE FUNCTION tally_append_only();
CREATE TRIGGER claims_append_only BEFORE UPDATE OR DELETE ON claims
    FOR EACH ROW EXECUTE FUNCTION tally_append_only();
CREATE TRIGGER claims_no_truncate BEFORE TRUNCATE ON claims
    FOR EACH STATEMENT EXECUTE FUNCTION tally_append_only();

-- Lots: pending credits waiting to mature; settlement_id is set once, when settled.
CREATE TABLE lots (
    id            BIGSERIAL PRIMARY KEY,
    wallet_id     BIGINT         NOT NULL REFERENCES wallets (id),
    journal_id    BIGINT         NOT NULL REFERENCES journal (id),
    amount        NUMERIC(38,18) NOT NULL CHECK (amount > 0),
    matures_at    TIMESTAMPTZ    NOT NULL,
    settlement_id BIGINT
);
CREATE INDEX lots_unsettled ON lots (matures_at, wallet_id) WHERE settlement_id IS NULL;
CREATE INDEX lots_wallet ON lots (wallet_id) WHERE settlement_id IS NULL;

-- Revenue credited per user and UTC day of receipt, for per_user_per_day caps.
CREATE TABLE user_days (
    wallet_id        BIGINT         NOT NULL REFERENCES wallets (id),
    day              TEXT           NOT NULL,
    revenue_credited NUMERIC(38,18) NOT NULL,
    PRIMARY KEY (wallet_id, day)
);

-- Sessions: what each SPP session estimated and what became of it.
CREATE TABLE sessions (
    inbox_id         BIGINT         PRIMARY KEY REFERENCES inbox (id),
    property         TEXT           NOT NULL,
    user_id          TEXT           NOT NULL,
    session_id       TEXT           NOT NULL,
    country          TEXT           NOT NULL DEFAULT '',
    duration_seconds BIGINT         NOT NULL,
    revenue_usd      NUMERIC(38,18) NOT NULL,
    gross            NUMERIC(38,18) NOT NULL,
    withheld         NUMERIC(38,18) NOT NULL,
    credited         NUMERIC(38,18) NOT NULL,
    capped_excess    NUMERIC(38,18) NOT NULL,
    reason           TEXT           NOT NULL DEFAULT '',
    received_at      TIMESTAMPTZ    NOT NULL
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
DROP FUNCTION tally_append_only CASCADE;
DROP TABLE wallets;
DROP TABLE inbox;
