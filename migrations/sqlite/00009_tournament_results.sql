-- +goose Up
-- SQLite twin of postgres/00009: money is TEXT and summed in Go; text compares byte by
-- byte. SQLite cannot change a primary key in place, so the rank buckets are copied into
-- a new table with the shard column.
CREATE TABLE tournament_results (
    property     TEXT     NOT NULL,
    tournament   TEXT     NOT NULL,
    window_start DATETIME NOT NULL,
    user_id      TEXT     NOT NULL,
    rank         BIGINT,
    score        TEXT     NOT NULL,
    sort_key     TEXT     NOT NULL,
    achieved_us  BIGINT   NOT NULL,
    event_id     BIGINT   NOT NULL,
    plays        BIGINT   NOT NULL,
    prize        TEXT,
    PRIMARY KEY (property, tournament, window_start, user_id)
);
CREATE INDEX tournament_results_board ON tournament_results (property, tournament, window_start, sort_key, achieved_us, event_id)
    WHERE rank IS NOT NULL;

ALTER TABLE tournament_windows ADD COLUMN closes_at DATETIME;
ALTER TABLE tournament_windows ADD COLUMN final_board BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE tournament_rank_buckets_sharded (
    property     TEXT     NOT NULL,
    tournament   TEXT     NOT NULL,
    window_start DATETIME NOT NULL,
    level        SMALLINT NOT NULL,
    bucket       TEXT     NOT NULL,
    shard        SMALLINT NOT NULL DEFAULT 0,
    users        BIGINT   NOT NULL,
    PRIMARY KEY (property, tournament, window_start, level, bucket, shard)
);
INSERT INTO tournament_rank_buckets_sharded (property, tournament, window_start, level, bucket, shard, users)
    SELECT property, tournament, window_start, level, bucket, 0, users FROM tournament_rank_buckets;
DROP TABLE tournament_rank_buckets;
ALTER TABLE tournament_rank_buckets_sharded RENAME TO tournament_rank_buckets;

-- +goose Down
CREATE TABLE tournament_rank_buckets_flat (
    property     TEXT     NOT NULL,
    tournament   TEXT     NOT NULL,
    window_start DATETIME NOT NULL,
    level        SMALLINT NOT NULL,
    bucket       TEXT     NOT NULL,
    users        BIGINT   NOT NULL,
    PRIMARY KEY (property, tournament, window_start, level, bucket)
);
INSERT INTO tournament_rank_buckets_flat (property, tournament, window_start, level, bucket, users)
    SELECT property, tournament, window_start, level, bucket, SUM(users) FROM tournament_rank_buckets
    GROUP BY property, tournament, window_start, level, bucket;
DROP TABLE tournament_rank_buckets;
ALTER TABLE tournament_rank_buckets_flat RENAME TO tournament_rank_buckets;
ALTER TABLE tournament_windows DROP COLUMN final_board;
ALTER TABLE tournament_windows DROP COLUMN closes_at;
DROP TABLE tournament_results;
