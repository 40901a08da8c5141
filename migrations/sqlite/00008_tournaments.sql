-- +goose Up
-- SQLite twin of postgres/00008: money is TEXT and summed in Go; text compares byte by byte.
-- Tournaments (issue 12).
--
-- A window of a tournament gets its row when its first score counts. The row is the lock
-- that orders the applier and the closer: the applier upserts it (taking its row lock)
-- before it adds scores, and the closer locks it FOR UPDATE before it ranks and pays, so a
-- score is either in the ranking that was paid or sees closed_at set and is not counted.
-- closed_at is set in the transaction that pays: a window is closed, and paid, once.
CREATE TABLE tournament_windows (
    property     TEXT           NOT NULL,
    tournament   TEXT           NOT NULL,
    window_start DATETIME       NOT NULL,
    window_end   DATETIME       NOT NULL,
    created_at   DATETIME       NOT NULL,
    closed_at    DATETIME,
    rule_version TEXT,
    ranked       BIGINT,
    paid         TEXT,
    PRIMARY KEY (property, tournament, window_start)
);
CREATE INDEX tournament_windows_open ON tournament_windows (window_end) WHERE closed_at IS NULL;

-- The live leaderboard: each user's best score in the window. sort_key orders best
-- first whatever the direction (rewards.ScoreKey), so both dialects rank by one text
-- column; achieved_us (microseconds since 1970) and event_id break ties. coarse_bucket
-- and fine_bucket are the sort key's rank buckets (rewards.RankBucket, below), kept with
-- the row so that one statement ranks a user.
CREATE TABLE tournament_scores (
    property     TEXT           NOT NULL,
    tournament   TEXT           NOT NULL,
    window_start DATETIME       NOT NULL,
    user_id      TEXT           NOT NULL,
    score        TEXT NOT NULL,
    sort_key     TEXT NOT NULL,
    achieved_us  BIGINT         NOT NULL,
    event_id     BIGINT         NOT NULL,
    plays        BIGINT         NOT NULL,
    coarse_bucket TEXT NOT NULL,
    fine_bucket  TEXT NOT NULL,
    prev_key     TEXT,
    updated_at   DATETIME       NOT NULL,
    PRIMARY KEY (property, tournament, window_start, user_id)
);
CREATE INDEX tournament_scores_rank ON tournament_scores (property, tournament, window_start, sort_key, achieved_us, event_id);

-- How many users' best scores fall in each bucket of sort keys (rewards.RankBucket), at
-- two levels (level = significant digits: 1 coarse, 3 fine), so a user's rank is the
-- users of the coarse buckets ahead, plus those of the fine buckets ahead inside the
-- user's coarse bucket, plus the rows ahead in the user's fine bucket: a few hundred rows
-- read, not every row ahead. The applier keeps it in the transaction that moves a best
-- score (prev_key above is the key it moved from).
CREATE TABLE tournament_rank_buckets (
    property     TEXT        NOT NULL,
    tournament   TEXT        NOT NULL,
    window_start DATETIME    NOT NULL,
    level        SMALLINT    NOT NULL,
    bucket       TEXT NOT NULL,
    users        BIGINT      NOT NULL,
    PRIMARY KEY (property, tournament, window_start, level, bucket)
);

-- The plays that counted, so a play reported many times counts once toward min_plays.
CREATE TABLE tournament_plays (
    property     TEXT        NOT NULL,
    tournament   TEXT        NOT NULL,
    window_start DATETIME NOT NULL,
    user_id      TEXT        NOT NULL,
    play         TEXT        NOT NULL,
    PRIMARY KEY (property, tournament, window_start, user_id, play)
);

-- Each prize paid when a window closed; the key backs up closed_at.
CREATE TABLE tournament_prizes (
    property     TEXT           NOT NULL,
    tournament   TEXT           NOT NULL,
    window_start DATETIME       NOT NULL,
    user_id      TEXT           NOT NULL,
    rank         BIGINT         NOT NULL,
    amount       TEXT NOT NULL,
    ref          TEXT           NOT NULL,
    created_at   DATETIME       NOT NULL,
    PRIMARY KEY (property, tournament, window_start, user_id)
);

-- +goose Down
DROP TABLE tournament_prizes;
DROP TABLE tournament_rank_buckets;
DROP TABLE tournament_plays;
DROP TABLE tournament_scores;
DROP TABLE tournament_windows;
