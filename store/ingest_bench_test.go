package store_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tally/rewards"
	"tally/store"
	"tally/store/storetest"
)

// BenchmarkIngestBatch measures the store's group-commit path alone: 4 writers, each
// committing batches of 64 new SPP sessions over 10,000 users. Reports events/s.
func BenchmarkIngestBatch(b *testing.B) {
	for _, d := range storetest.Dialects() {
		b.Run(string(d), func(b *testing.B) {
			db := storetest.Open(b, d, nil)
			const size, writers = 64, 4
			var seq atomic.Int64
			batches := b.N/size + 1
			var next atomic.Int64
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(batches) {
						batch := make([]rewards.Inbound, size)
						for i := range batch {
							n := seq.Add(1)
							batch[i] = in(session(fmt.Sprintf("user-%d", n%10000), fmt.Sprintf("s-%d", n), "0.000012", 60))
						}
						if _, err := db.Ingest(context.Background(), batch); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(seq.Load())/time.Since(start).Seconds(), "events/s")
			_ = store.SQLite
		})
	}
}
