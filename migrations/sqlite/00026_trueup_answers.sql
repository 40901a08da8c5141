-- +goose Up
-- A true-up's retry with its key answers what the run answered, kept apart from the
-- running totals that late sessions add to (see the Postgres migration). Money is TEXT
-- here, so the ratio needs no change.
ALTER TABLE trueups ADD COLUMN answered_released TEXT;
ALTER TABLE trueups ADD COLUMN answered_shortfall TEXT;

-- +goose Down
ALTER TABLE trueups DROP COLUMN answered_released;
ALTER TABLE trueups DROP COLUMN answered_shortfall;
