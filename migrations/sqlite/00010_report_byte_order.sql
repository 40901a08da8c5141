-- +goose Up
-- Postgres twin: postgres/00010 puts property and user_id of entries and sessions in
-- byte order (COLLATE "C"), so the payout report streams off their indexes. SQLite's
-- BINARY collation already compares bytes; this file keeps the two dialects at the
-- same version.
SELECT 1;

-- +goose Down
SELECT 1;
