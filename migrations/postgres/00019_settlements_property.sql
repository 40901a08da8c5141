-- +goose Up
-- A property's own settlement runs, newest first (store.SettlementRuns with a property):
-- the console's overview shows each property's last run, which the newest runs of every
-- property may not hold once others have run often.
CREATE INDEX settlements_property ON settlements (property, id);

-- +goose Down
DROP INDEX settlements_property;
