-- +goose Up
-- A window ranks the game it began with: the tournament's game is kept on its row when
-- it begins, so a config that points the tournament at another game mid-window counts
-- that game from the next window on, instead of ranking two games' scores (in unrelated
-- units) on one board and paying prizes by it. '' for windows begun before: they count
-- the configured game, as before.
ALTER TABLE tournament_windows ADD COLUMN game TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE tournament_windows DROP COLUMN game;
