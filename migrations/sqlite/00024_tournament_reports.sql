-- +goose Up
-- SQLite twin of postgres/00024: each counted score report's first window.
CREATE TABLE IF NOT EXISTS tournament_reports (
    property     TEXT     NOT NULL,
    tournament   TEXT     NOT NULL,
    user_id      TEXT     NOT NULL,
    report       TEXT     NOT NULL,
    window_start DATETIME NOT NULL,
    created_at   DATETIME NOT NULL,
    PRIMARY KEY (property, tournament, user_id, report)
);
CREATE INDEX IF NOT EXISTS tournament_reports_age ON tournament_reports (property, tournament, created_at);
-- 00023's index of plays, for the pin this table replaces.
DROP INDEX IF EXISTS tournament_plays_play;

-- +goose Down
DROP TABLE tournament_reports;
