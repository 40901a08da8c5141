-- +goose Up
-- Postgres twin: postgres/00004 drops the foreign keys of the applier's tables. SQLite
-- keeps them (dropping one means rebuilding the table, and here a check is a B-tree
-- probe); this file keeps the two dialects at the same version.
SELECT 1;

-- +goose Down
SELECT 1;
