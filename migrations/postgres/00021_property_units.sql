-- +goose Up
-- Each property's wallet currency and scale, as `tally serve` first saw them. Wallets and
-- entries hold bare amounts: a config that changed the currency would relabel every
-- balance, and one that lowered the scale would strand the digits beyond it, so the
-- commands refuse a config that differs (a finer scale is taken and recorded).
CREATE TABLE property_units (
    property    TEXT        PRIMARY KEY,
    currency    TEXT        NOT NULL,
    scale       INTEGER     NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL
);

-- +goose Down
DROP TABLE property_units;
