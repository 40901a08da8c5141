-- +goose Up
-- A window ranks as it was begun: the direction (higher or lower is better) its scores'
-- sort keys are made with is kept on its row when it begins, so a config that flips the
-- direction mid-window applies from the next window on, instead of mixing keys of both
-- directions in one ranking. '' for windows begun before: their scores keep being keyed
-- with the configured direction, as before.
ALTER TABLE tournament_windows ADD COLUMN direction TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE tournament_windows DROP COLUMN direction;
