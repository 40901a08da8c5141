-- +goose Up
-- SQLite twin of postgres/00007: money is TEXT and summed in Go. True-ups (issue 14). Each session keeps the buffer and per-session cap it was credited
-- under, so a later true-up releases under the rule of the session, not of today.
-- Sessions applied before this migration have NULL here; a true-up uses the property's
-- current revenue rule for them.
ALTER TABLE sessions ADD COLUMN buffer TEXT;
ALTER TABLE sessions ADD COLUMN session_cap TEXT;

-- Booked revenue per property and day, as Gamezop's Ad Revenue Reports API gives it.
CREATE TABLE booked_revenue (
    property    TEXT           NOT NULL,
    day         TEXT           NOT NULL,
    revenue_usd TEXT NOT NULL,
    created_at  DATETIME    NOT NULL,
    updated_at  DATETIME    NOT NULL,
    PRIMARY KEY (property, day)
);

-- A change to the booked revenue of a day already trued up: recorded, and counted in the
-- booked revenue of the next true-up of the property (trueup_id is set then).
CREATE TABLE booked_corrections (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    property   TEXT           NOT NULL,
    day        TEXT           NOT NULL,
    old_usd    TEXT NOT NULL,
    new_usd    TEXT NOT NULL,
    actor      TEXT           NOT NULL,
    created_at DATETIME    NOT NULL,
    trueup_id  BIGINT
);
CREATE INDEX booked_corrections_open ON booked_corrections (property) WHERE trueup_id IS NULL;

CREATE TABLE trueups (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    property        TEXT           NOT NULL,
    from_day        TEXT           NOT NULL,
    to_day          TEXT           NOT NULL,
    idempotency_key TEXT           NOT NULL,
    request_hash    TEXT           NOT NULL,
    actor           TEXT           NOT NULL,
    estimated       TEXT NOT NULL,
    booked          TEXT NOT NULL,
    ratio           TEXT NOT NULL,
    released        TEXT NOT NULL,
    shortfall       TEXT NOT NULL,
    users           BIGINT         NOT NULL,
    sessions        BIGINT         NOT NULL,
    created_at      DATETIME    NOT NULL,
    CONSTRAINT trueups_key UNIQUE (property, idempotency_key)
);

-- The primary key is the guarantee that a day of a property is trued up once.
CREATE TABLE trueup_days (
    property  TEXT           NOT NULL,
    day       TEXT           NOT NULL,
    trueup_id BIGINT         NOT NULL REFERENCES trueups (id),
    released  TEXT NOT NULL,
    shortfall TEXT NOT NULL,
    PRIMARY KEY (property, day)
);

-- +goose Down
DROP TABLE trueup_days;
DROP TABLE trueups;
DROP TABLE booked_corrections;
DROP TABLE booked_revenue;
ALTER TABLE sessions DROP COLUMN session_cap;
ALTER TABLE sessions DROP COLUMN buffer;
