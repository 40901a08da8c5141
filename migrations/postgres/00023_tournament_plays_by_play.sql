-- +goose Up
-- Superseded by 00024 (which drops this index): kept so that a database migrated while
-- it was the newest keeps its version numbers.
-- A play counts in the first window of its tournament it was counted in: a report of it
-- redelivered with a new timestamp that falls in the next window is not counted there
-- again (it ranked, and could be paid, twice). The plays of a closed window are kept
-- for a week for that look-up, by play.
CREATE INDEX tournament_plays_play ON tournament_plays (property, tournament, user_id, play);

-- +goose Down
DROP INDEX IF EXISTS tournament_plays_play;
