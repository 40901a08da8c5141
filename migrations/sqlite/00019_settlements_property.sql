-- +goose Up
-- SQLite twin of postgres/00019: a property's settlement runs, newest first.
CREATE INDEX settlements_property ON settlements (property, id);

-- +goose Down
DROP INDEX settlements_property;
