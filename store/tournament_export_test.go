package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"tally/rewards"
)

// CloseTournamentWindowKilled is CloseTournamentWindow ending its transaction the way a
// killed process would, after every prize, record and mark is written: on Postgres the
// backend is terminated, on SQLite the transaction fails.
func (db *DB) CloseTournamentWindowKilled(ctx context.Context, property string, t rewards.Tournament, w rewards.Window) (rewards.WindowClose, error) {
	return db.closeWindow(ctx, property, t, w, func(tx *gorm.DB) error {
		if db.dialect == Postgres {
			return tx.Exec(`SELECT pg_terminate_backend(pg_backend_pid())`).Error
		}
		return errKilled
	})
}

// HoldApply makes the next Apply on db, once its effects and marks are written and just
// before it commits, signal held and wait for release: a score writer that keeps its
// locks while others write.
func HoldApply(db *DB, held chan<- struct{}, release <-chan struct{}) {
	db.afterApply = func(*gorm.DB) error {
		db.afterApply = nil
		close(held)
		<-release
		return nil
	}
}

// RebuildRankBuckets recounts a window's rank buckets from its rows, for benchmarks that
// write the rows with set-based SQL instead of through the applier, and checks the rows'
// bucket columns against rewards.RankBucket.
func (db *DB) RebuildRankBuckets(ctx context.Context, property, tournament string, start time.Time, dir rewards.Direction) error {
	return db.tx(ctx, func(tx *gorm.DB) error {
		var rows []struct {
			SortKey      string
			CoarseBucket string
			FineBucket   string
			N            int64
		}
		if err := query(tx, &rows, `SELECT sort_key, coarse_bucket, fine_bucket, COUNT(*) AS n FROM tournament_scores WHERE property = ?
			AND tournament = ? AND window_start = ? GROUP BY sort_key, coarse_bucket, fine_bucket`, property, tournament, start); err != nil {
			return err
		}
		for _, r := range rows {
			if r.CoarseBucket != rewards.RankBucket(r.SortKey, dir, rewards.CoarseDigits) || r.FineBucket != rewards.RankBucket(r.SortKey, dir, rewards.FineDigits) {
				return fmt.Errorf("store: key %s has buckets %s and %s", r.SortKey, r.CoarseBucket, r.FineBucket)
			}
		}
		type bucket struct {
			level int
			name  string
		}
		counts := map[bucket]int64{}
		for _, r := range rows {
			for _, level := range []int{rewards.CoarseDigits, rewards.FineDigits} {
				counts[bucket{level, rewards.RankBucket(r.SortKey, dir, level)}] += r.N
			}
		}
		if _, err := rawExec(tx, `DELETE FROM tournament_rank_buckets WHERE property = ? AND tournament = ? AND window_start = ?`,
			property, tournament, start); err != nil {
			return err
		}
		var out [][]any
		for b, n := range counts {
			out = append(out, []any{property, tournament, start, b.level, b.name, n})
		}
		return insertRows(tx, `INSERT INTO tournament_rank_buckets (property, tournament, window_start, level, bucket, users) VALUES `, out, "")
	})
}
