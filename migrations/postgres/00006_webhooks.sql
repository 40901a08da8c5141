-- +goose Up
-- Outbound webhooks (issue 13). A delivery is one event for one endpoint, written in the
-- transaction of the change it reports (the outbox), so nothing is announced that did
-- not commit and nothing that committed goes unannounced. body is the exact JSON that is
-- signed and sent on every attempt; webhook-id is "msg_<id>".
CREATE TABLE webhook_deliveries (
    id              BIGSERIAL PRIMARY KEY,
    property        TEXT        NOT NULL,
    user_id         TEXT        NOT NULL,
    endpoint        TEXT        NOT NULL,
    type            TEXT        NOT NULL,
    body            TEXT        NOT NULL,
    status          TEXT        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER     NOT NULL DEFAULT 0,
    -- step is the position in the retry schedule; a manual retry starts it over.
    step            INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    -- holder and lease_until: the worker sending it now; a lease that lapsed (its
    -- process died between claim and answer) lets any worker send it again.
    holder          TEXT,
    lease_until     TIMESTAMPTZ,
    last_attempt_at TIMESTAMPTZ,
    last_status     INTEGER     NOT NULL DEFAULT 0,
    last_error      TEXT        NOT NULL DEFAULT '',
    delivered_at    TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL
);
-- The worker's claim looks only at pending deliveries, and for each at the earlier ones
-- of the same endpoint and user (order per user).
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (property, endpoint, user_id, id) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_status ON webhook_deliveries (status, id);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';

-- One row per endpoint that has been tried: how long it has been failing, and whether
-- it was disabled for failing too long.
CREATE TABLE webhook_endpoints (
    property        TEXT        NOT NULL,
    url             TEXT        NOT NULL,
    failing_since   TIMESTAMPTZ,
    disabled_at     TIMESTAMPTZ,
    last_success_at TIMESTAMPTZ,
    last_failure_at TIMESTAMPTZ,
    PRIMARY KEY (property, url)
);

-- +goose Down
DROP TABLE webhook_endpoints;
DROP TABLE webhook_deliveries;
