-- +goose Up
-- SQLite twin of postgres/00006: one process, so the lease columns only guard against a
-- worker that died between claim and answer.
CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    property        TEXT     NOT NULL,
    user_id         TEXT     NOT NULL,
    endpoint        TEXT     NOT NULL,
    type            TEXT     NOT NULL,
    body            TEXT     NOT NULL,
    status          TEXT     NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER  NOT NULL DEFAULT 0,
    step            INTEGER  NOT NULL DEFAULT 0,
    next_attempt_at DATETIME NOT NULL,
    holder          TEXT,
    lease_until     DATETIME,
    last_attempt_at DATETIME,
    last_status     INTEGER  NOT NULL DEFAULT 0,
    last_error      TEXT     NOT NULL DEFAULT '',
    delivered_at    DATETIME,
    created_at      DATETIME NOT NULL
);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (property, endpoint, user_id, id) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_status ON webhook_deliveries (status, id);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';

CREATE TABLE webhook_endpoints (
    property        TEXT     NOT NULL,
    url             TEXT     NOT NULL,
    failing_since   DATETIME,
    disabled_at     DATETIME,
    last_success_at DATETIME,
    last_failure_at DATETIME,
    PRIMARY KEY (property, url)
);

-- +goose Down
DROP TABLE webhook_endpoints;
DROP TABLE webhook_deliveries;
