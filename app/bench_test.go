package app_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tally/app"
	"tally/store"
	"tally/store/storetest"
)

// BenchmarkIngestSPP drives the real HTTP stack with concurrent SPP deliveries (new
// sessions spread over 10,000 users) against Postgres and reports requests/s and p99
// latency. DESIGN.md §4 target: ≥ 10,000 req/s, p99 ≤ 25 ms.
//
//	go test -run '^$' -bench IngestSPP -benchtime 20000x ./app/
func BenchmarkIngestSPP(b *testing.B) {
	for _, d := range []store.Dialect{store.Postgres, store.SQLite} {
		b.Run(string(d), func(b *testing.B) {
			db := storetest.Open(b, d, nil)
			workers := max(2, runtime.NumCPU())
			if d == store.SQLite {
				workers = 1
			}
			a := app.New(db, app.Options{Properties: []app.Property{arcade()}, IngestWorkers: workers, IngestBatch: 256})
			defer a.Close()
			srv := httptest.NewServer(a.Handler())
			defer srv.Close()
			load(b, newClient(), func(n int64) *http.Request { return sppRequest(srv.URL, n, 10000) })
		})
	}
}

// BenchmarkBalanceRead drives GET balance over real HTTP with 64 concurrent clients over
// 1,000 users with wallets. DESIGN.md §4 target: ≥ 15,000 req/s, p99 ≤ 5 ms.
//
//	go test -run '^$' -bench BalanceRead -benchtime 50000x ./app/
func BenchmarkBalanceRead(b *testing.B) {
	for _, d := range []store.Dialect{store.Postgres, store.SQLite} {
		b.Run(string(d), func(b *testing.B) {
			db := storetest.Open(b, d, nil)
			a := app.New(db, app.Options{Properties: []app.Property{arcade()}, IngestWorkers: 2, IngestBatch: 256})
			defer a.Close()
			srv := httptest.NewServer(a.Handler())
			defer srv.Close()
			client := newClient()
			for i := int64(0); i < 1000; i++ {
				resp, err := client.Do(sppRequest(srv.URL, i, 1000))
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			load(b, client, func(n int64) *http.Request {
				req, _ := http.NewRequest("GET", fmt.Sprintf("%s/v1/properties/arcade/users/user-%d/balance", srv.URL, n%1000), nil)
				req.Header.Set("Authorization", "Bearer "+apiKey)
				return req
			})
		})
	}
}

// load runs b.N requests from concurrent clients — 32 per CPU (64 on 2 cores) unless
// TALLY_BENCH_CLIENTS_PER_CPU says otherwise — (request builds the n-th one), fails on
// any non-200 answer, and reports requests/s and p99 latency.
func load(b *testing.B, client *http.Client, request func(n int64) *http.Request) {
	var seq atomic.Int64
	var mu sync.Mutex
	lat := make([]time.Duration, 0, b.N)
	perCPU := 32
	if v, err := strconv.Atoi(os.Getenv("TALLY_BENCH_CLIENTS_PER_CPU")); err == nil && v > 0 {
		perCPU = v
	}
	b.SetParallelism(perCPU)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		local := make([]time.Duration, 0, 1024)
		for pb.Next() {
			req := request(seq.Add(1))
			t := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body) // drain, so the connection is reused
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
			local = append(local, time.Since(t))
		}
		mu.Lock()
		lat = append(lat, local...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) > 0 {
		b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "req/s")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
}

func newClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}}
}

func sppRequest(url string, n int64, users int64) *http.Request {
	body := strings.Replace(strings.Replace(sppBody, "b48a8368-a369-49a4-b427-2d5891ef3763", fmt.Sprintf("bench-%d", n), 1),
		`"sub1"`, fmt.Sprintf(`"user-%d"`, n%users), 1)
	req, _ := http.NewRequest("POST", url+"/v1/hooks/arcade/gamezop/spp", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+sppToken)
	return req
}
