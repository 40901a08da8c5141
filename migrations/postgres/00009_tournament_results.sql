-- +goose Up
-- Tournaments, second part (issue 12): the final ranking is kept, and score writers no
-- longer queue on shared rows.
--
-- tournament_results is a closed window's final board, written in the transaction that
-- closes and pays it: every user with a score, their rank as the tournament's config
-- ranked them at the close (NULL: fewer plays than min_plays), and the prize paid. A
-- closed window is served from it, so a later config change (prizes, ties, min_plays,
-- direction, schedule) does not change what it shows. sort_key, achieved_us and
-- event_id are the live board's order at the close, so a leaderboard cursor means the
-- same thing before and after the close.
CREATE TABLE tournament_results (
    property     TEXT           NOT NULL,
    tournament   TEXT           NOT NULL,
    window_start TIMESTAMPTZ    NOT NULL,
    user_id      TEXT           NOT NULL,
    rank         BIGINT,
    score        NUMERIC(38,18) NOT NULL,
    sort_key     TEXT COLLATE "C" NOT NULL,
    achieved_us  BIGINT         NOT NULL,
    event_id     BIGINT         NOT NULL,
    plays        BIGINT         NOT NULL,
    prize        NUMERIC(38,18),
    PRIMARY KEY (property, tournament, window_start, user_id)
);
CREATE INDEX tournament_results_board ON tournament_results (property, tournament, window_start, sort_key, achieved_us, event_id)
    WHERE rank IS NOT NULL;

-- What the close recorded of the window: when it closed (end + the grace of the day),
-- and that its final board is in tournament_results. Windows closed before this
-- migration have no board (final_board false) and are still ranked from their scores.
ALTER TABLE tournament_windows ADD COLUMN closes_at TIMESTAMPTZ;
ALTER TABLE tournament_windows ADD COLUMN final_board BOOLEAN NOT NULL DEFAULT FALSE;

-- Score writers no longer upsert the window row (which held its row lock to commit and
-- queued every batch of a window): they insert it ON CONFLICT DO NOTHING and read it FOR
-- SHARE; the closer's FOR UPDATE still waits for them and holds off those after it.
--
-- Rank buckets are sharded: each applier transaction adds its moves to the rows of one
-- shard, one no concurrent applier holds (store/tournament.go, rankShard), so two
-- batches never wait for each other on a shared counter. A bucket's count is the sum of
-- its shards' rows; a single applier keeps using shard 0.
ALTER TABLE tournament_rank_buckets ADD COLUMN shard SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE tournament_rank_buckets DROP CONSTRAINT tournament_rank_buckets_pkey;
ALTER TABLE tournament_rank_buckets ADD PRIMARY KEY (property, tournament, window_start, level, bucket, shard);

-- +goose Down
-- The shards of each bucket are added up into shard 0 before the column goes.
INSERT INTO tournament_rank_buckets (property, tournament, window_start, level, bucket, shard, users)
    SELECT DISTINCT property, tournament, window_start, level, bucket, 0, 0 FROM tournament_rank_buckets WHERE shard <> 0
    ON CONFLICT DO NOTHING;
UPDATE tournament_rank_buckets SET users = (SELECT SUM(x.users) FROM tournament_rank_buckets x
    WHERE x.property = tournament_rank_buckets.property AND x.tournament = tournament_rank_buckets.tournament
    AND x.window_start = tournament_rank_buckets.window_start AND x.level = tournament_rank_buckets.level
    AND x.bucket = tournament_rank_buckets.bucket) WHERE shard = 0;
DELETE FROM tournament_rank_buckets WHERE shard <> 0;
ALTER TABLE tournament_rank_buckets DROP CONSTRAINT tournament_rank_buckets_pkey;
ALTER TABLE tournament_rank_buckets DROP COLUMN shard;
ALTER TABLE tournament_rank_buckets ADD PRIMARY KEY (property, tournament, window_start, level, bucket);
ALTER TABLE tournament_windows DROP COLUMN final_board;
ALTER TABLE tournament_windows DROP COLUMN closes_at;
DROP TABLE tournament_results;
