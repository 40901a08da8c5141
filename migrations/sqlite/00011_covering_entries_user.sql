-- +goose Up
-- SQLite twin of postgres/00011 (covering indexes for a user's ledger pages, and
-- autovacuum settings): nothing to do here; this file keeps the two dialects at the
-- same version.
SELECT 1;

-- +goose Down
SELECT 1;
