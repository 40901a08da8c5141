-- +goose Up
-- SQLite twin of postgres/00020: whether a window was begun as its tournament's one window.
ALTER TABLE tournament_windows ADD COLUMN one_window BOOLEAN NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE tournament_windows DROP COLUMN one_window;
