-- +goose Up
-- A score report (play, state, score) counts in the first window of its tournament it
-- was counted in: Gamezop redelivers a report with a new timestamp, which can fall in the
-- next window, where it ranked (and could be paid) again. One row per report, without
-- the window in its key, so two appliers counting it at once meet on the key; a close
-- removes its tournament's rows older than a week.
CREATE TABLE IF NOT EXISTS tournament_reports (
    property     TEXT        NOT NULL,
    tournament   TEXT        NOT NULL,
    user_id      TEXT        NOT NULL,
    report       TEXT        NOT NULL,
    window_start TIMESTAMPTZ NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (property, tournament, user_id, report)
);
CREATE INDEX IF NOT EXISTS tournament_reports_age ON tournament_reports (property, tournament, created_at);
-- 00023's index of plays, for the pin this table replaces.
DROP INDEX IF EXISTS tournament_plays_play;

-- +goose Down
DROP TABLE tournament_reports;
