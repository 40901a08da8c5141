-- +goose Up
-- SQLite twin of postgres/00013 (an inbox id taken after the transaction id, for the
-- applier's claim floor): SQLite has one writer at a time and removes an index entry
-- when its row changes, so its claims need no floor; this file keeps the two dialects
-- at the same version.
SELECT 1;

-- +goose Down
SELECT 1;
