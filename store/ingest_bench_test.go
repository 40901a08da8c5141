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

func benchBatch(seq *atomic.Int64, size int) []rewards.Inbound {
	batch := make([]rewards.Inbound, size)
	for i := range batch {
		n := seq.Add(1)
		batch[i] = in(session(fmt.Sprintf("user-%d", n%10000), fmt.Sprintf("s-%d", n), "0.000012", 60))
	}
	return batch
}

// BenchmarkRecord measures the receivers' group commit alone: 4 writers, each recording
// batches of 64 new SPP sessions over 10,000 users. Reports events/s.
//
//	go test -run '^$' -bench Record -benchtime 50000x ./store/
func BenchmarkRecord(b *testing.B) {
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		b.Run(string(d), func(b *testing.B) {
			db := storetest.Open(b, d, nil)
			const size, writers = 64, 4
			var seq, next atomic.Int64
			batches := b.N/size + 1
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for range writers {
				wg.Go(func() {
					for next.Add(1) <= int64(batches) {
						if _, err := db.Record(context.Background(), benchBatch(&seq, size)); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(seq.Load())/time.Since(start).Seconds(), "events/s")
		})
	}
}

// BenchmarkApply measures the applier alone: b.N recorded SPP sessions over 10,000
// users drained by 1 or 2 appliers in batches of 1,000. Reports events/s.
//
//	go test -run '^$' -bench Apply -benchtime 50000x ./store/
func BenchmarkApply(b *testing.B) {
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		for _, appliers := range []int{1, 2} {
			if d == store.SQLite && appliers > 1 {
				continue // one writer
			}
			b.Run(fmt.Sprintf("%s/%d", d, appliers), func(b *testing.B) {
				db := storetest.Open(b, d, nil)
				var seq atomic.Int64
				for recorded := 0; recorded < b.N; recorded += 1000 {
					if _, err := db.Record(context.Background(), benchBatch(&seq, min(1000, b.N-recorded))); err != nil {
						b.Fatal(err)
					}
				}
				b.ResetTimer()
				start := time.Now()
				var applied atomic.Int64
				var wg sync.WaitGroup
				for range appliers {
					wg.Go(func() {
						for {
							got, err := db.Apply(context.Background(), rewards.Claim{Status: rewards.StatusRecorded, Limit: 1000}, decide)
							if err != nil {
								b.Error(err)
								return
							}
							if len(got) == 0 {
								return
							}
							applied.Add(int64(len(got)))
						}
					})
				}
				wg.Wait()
				b.ReportMetric(float64(applied.Load())/time.Since(start).Seconds(), "events/s")
			})
		}
	}
}
