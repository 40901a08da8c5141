-- +goose Up
-- SQLite twin of postgres/00016: the direction a window's scores are keyed with.
ALTER TABLE tournament_windows ADD COLUMN direction TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE tournament_windows DROP COLUMN direction;
