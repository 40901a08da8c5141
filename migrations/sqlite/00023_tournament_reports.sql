-- +goose Up
-- SQLite twin of postgres/00023: each counted score report's first window.
CREATE TABLE tournament_reports (
    property     TEXT     NOT NULL,
    tournament   TEXT     NOT NULL,
    user_id      TEXT     NOT NULL,
    report       TEXT     NOT NULL,
    window_start DATETIME NOT NULL,
    created_at   DATETIME NOT NULL,
    PRIMARY KEY (property, tournament, user_id, report)
);
CREATE INDEX tournament_reports_age ON tournament_reports (property, tournament, created_at);

-- +goose Down
DROP TABLE tournament_reports;
