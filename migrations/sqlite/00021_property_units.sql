-- +goose Up
-- SQLite twin of postgres/00021: each property's wallet currency and scale.
CREATE TABLE property_units (
    property    TEXT     PRIMARY KEY,
    currency    TEXT     NOT NULL,
    scale       INTEGER  NOT NULL,
    recorded_at DATETIME NOT NULL
);

-- +goose Down
DROP TABLE property_units;
