-- +goose Up
-- Which copy of a score report is first goes by when Tally received it (a replay keeps
-- its receipt), then, for copies of one group commit, by when it was made: the pin's
-- copy's receipt and time are kept with it. By the window's start, a
-- redelivery in a window of a new schedule that starts earlier (daily to weekly) was
-- taken for the first copy and counted again; by the provider's timestamp, an original
-- applied after its redelivery lost its own window where windows overlap (review
-- helpers 238 and 239). Rows written before this (or by an older binary) have neither:
-- their window_start, at or before both, stands in (review helper 240).
SET LOCAL lock_timeout = '3s';
ALTER TABLE tournament_reports ADD COLUMN received_at TIMESTAMPTZ, ADD COLUMN made_at TIMESTAMPTZ;

-- +goose Down
SET LOCAL lock_timeout = '3s';
ALTER TABLE tournament_reports DROP COLUMN received_at, DROP COLUMN made_at;
