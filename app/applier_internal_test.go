package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tally/rewards"
)

// failingApplyStore claims ids 1–4 and fails every Apply that includes a bad id.
type failingApplyStore struct {
	bad         map[int64]error
	quarantined []int64 // the ids Quarantine was asked for
	taken       bool    // another applier took the event first: Quarantine changes nothing
}

func (f *failingApplyStore) Apply(_ context.Context, c rewards.Claim, decide rewards.Decider) ([]rewards.Applied, error) {
	ids := c.IDs
	if len(ids) == 0 {
		ids = []int64{1, 2, 3, 4}
	}
	var out []rewards.Applied
	for range 2 { // as if the store retried the transaction: every event decided twice
		for _, id := range ids {
			decide(rewards.Kept{ID: id, Status: c.Status})
		}
	}
	for _, id := range ids {
		if err := f.bad[id]; err != nil {
			return nil, err
		}
		out = append(out, rewards.Applied{ID: id, Status: rewards.StatusApplied})
	}
	return out, nil
}

func (f *failingApplyStore) Quarantine(_ context.Context, id int64, _ string) (string, bool, error) {
	f.quarantined = append(f.quarantined, id)
	if f.taken {
		return "", false, nil
	}
	return "arcade", true, nil
}

func (f *failingApplyStore) Backlog(context.Context) (rewards.Backlog, error) {
	return rewards.Backlog{}, nil
}

// Only a failure the event causes quarantines it; the database being unavailable fails
// the pass and changes nothing, however the batch is split.
func TestApplierQuarantinesOnlyTheEventsFault(t *testing.T) {
	for _, tt := range []struct {
		name            string
		err             error
		wantQuarantined string
		wantApplied     int
		wantErr         bool
		taken           bool // another applier took event 3 before the quarantine
		wantCounted     bool // the quarantine shows in tally_applied_events_total
	}{
		{"the database refuses event 3's data", fmt.Errorf("%w: value too long", rewards.ErrRejected), "[3]", 4, false, false, true},
		// Event 3 stays recorded, for the next pass; the others apply (before, none did,
		// and every pass claimed the same batch again).
		{"the database times out on event 3", fmt.Errorf("%w: %w", rewards.ErrUnavailable, context.DeadlineExceeded), "[]", 3, true, false, false},
		{"another applier took event 3 meanwhile", fmt.Errorf("%w: value too long", rewards.ErrRejected), "[3]", 3, false, true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := &App{log: slog.New(slog.DiscardHandler), metrics: NewMetrics()}
			st := &failingApplyStore{bad: map[int64]error{3: tt.err}, taken: tt.taken}
			ap := newApplier(a, st, 10, 0)
			n, err := ap.pass(context.Background(), rewards.Claim{Status: rewards.StatusRecorded, Limit: 10})
			if (err != nil) != tt.wantErr || fmt.Sprint(st.quarantined) != tt.wantQuarantined {
				t.Fatalf("pass = %d, %v; quarantined %v, want %s", n, err, st.quarantined, tt.wantQuarantined)
			}
			if n != tt.wantApplied {
				t.Fatalf("pass handled %d events, want %d", n, tt.wantApplied)
			}
			// The quarantine is counted under the event's property, not "".
			rec := httptest.NewRecorder()
			a.metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
			counted := strings.Contains(rec.Body.String(), `tally_applied_events_total{property="arcade",status="quarantined"} 1`+"\n")
			if counted != tt.wantCounted || strings.Contains(rec.Body.String(), `tally_applied_events_total{property="",status="quarantined"}`) {
				t.Fatalf("quarantine counted under the wrong property:\n%s", rec.Body.String())
			}
			if tt.wantErr && !errors.Is(err, rewards.ErrUnavailable) {
				t.Fatalf("err %v, want ErrUnavailable", err)
			}
		})
	}
}

// deadApplyStore claims ids 1..n and fails every Apply, as a database too slow for any
// batch does.
type deadApplyStore struct {
	n     int64
	calls int
}

func (f *deadApplyStore) Apply(_ context.Context, c rewards.Claim, decide rewards.Decider) ([]rewards.Applied, error) {
	f.calls++
	ids := c.IDs
	if len(ids) == 0 {
		for id := int64(1); id <= f.n; id++ {
			ids = append(ids, id)
		}
	}
	for _, id := range ids {
		decide(rewards.Kept{ID: id, Status: c.Status})
	}
	return nil, fmt.Errorf("%w: %w", rewards.ErrUnavailable, context.DeadlineExceeded)
}

func (f *deadApplyStore) Quarantine(context.Context, int64, string) (string, bool, error) {
	panic("a database failure quarantined an event")
}

func (f *deadApplyStore) Backlog(context.Context) (rewards.Backlog, error) {
	return rewards.Backlog{}, nil
}

// A database that fails every batch is not tried once per event of the batch: the pass
// gives up after a few attempts, each of which may have waited for the apply timeout.
func TestApplierGivesUpOnADatabaseThatFailsEverything(t *testing.T) {
	a := &App{log: slog.New(slog.DiscardHandler), metrics: NewMetrics()}
	st := &deadApplyStore{n: 1000}
	ap := newApplier(a, st, 1000, 0)
	n, err := ap.pass(context.Background(), rewards.Claim{Status: rewards.StatusRecorded, Limit: 1000})
	if n != 0 || !errors.Is(err, rewards.ErrUnavailable) {
		t.Fatalf("pass = %d, %v", n, err)
	}
	if st.calls > passFailures(1000)+1 {
		t.Fatalf("%d attempts at a batch of 1,000 on a database that fails everything, want at most %d", st.calls, passFailures(1000)+1)
	}
}

// recordedStore holds recorded events 1..n; a claim takes the oldest up to its limit
// (or the ids asked for) and fails as a whole if it holds a bad id, as a transaction the
// database refuses does.
type recordedStore struct {
	recorded    map[int64]bool
	bad         map[int64]error
	quarantined []int64
}

func newRecordedStore(n int64, bad map[int64]error) *recordedStore {
	s := &recordedStore{recorded: map[int64]bool{}, bad: bad}
	for id := int64(1); id <= n; id++ {
		s.recorded[id] = true
	}
	return s
}

func (s *recordedStore) Apply(_ context.Context, c rewards.Claim, decide rewards.Decider) ([]rewards.Applied, error) {
	var ids []int64
	if len(c.IDs) > 0 {
		for _, id := range c.IDs {
			if s.recorded[id] {
				ids = append(ids, id)
			}
		}
	} else {
		for id := int64(1); len(ids) < c.Limit && id <= int64(len(s.recorded)+len(s.quarantined)+2000); id++ {
			if s.recorded[id] {
				ids = append(ids, id)
			}
		}
	}
	for _, id := range ids {
		decide(rewards.Kept{ID: id, Status: c.Status})
	}
	for _, id := range ids {
		if err := s.bad[id]; err != nil {
			return nil, err
		}
	}
	out := make([]rewards.Applied, 0, len(ids))
	for _, id := range ids {
		delete(s.recorded, id)
		out = append(out, rewards.Applied{ID: id, Status: rewards.StatusApplied})
	}
	return out, nil
}

func (s *recordedStore) Quarantine(_ context.Context, id int64, _ string) (string, bool, error) {
	delete(s.recorded, id)
	s.quarantined = append(s.quarantined, id)
	return "arcade", true, nil
}

func (s *recordedStore) Backlog(context.Context) (rewards.Backlog, error) {
	return rewards.Backlog{}, nil
}

// Events the database refuses cost a pass nothing of its failure budget, however many
// there are: two far apart in a batch of 1,000 are both quarantined and the rest
// applied. (With every refusal counted, the pass gave up with a hundred good events
// recorded, and `tally replay` failed.) An event that fails alone for a reason not its
// own stays recorded, and the drain still applies every other event.
func TestApplierSplitsAroundEveryRefusedEvent(t *testing.T) {
	rejected := fmt.Errorf("%w: value too long", rewards.ErrRejected)
	timeout := fmt.Errorf("%w: %w", rewards.ErrUnavailable, context.DeadlineExceeded)
	for _, tt := range []struct {
		name            string
		events          int64
		bad             map[int64]error
		wantApplied     int
		wantQuarantined string
		wantErr         bool
	}{
		{"two refused", 1000, map[int64]error{10: rejected, 900: rejected}, 1000, "[10 900]", false},
		{"one times out alone", 1000, map[int64]error{10: timeout}, 999, "[]", true},
		// More than one batch behind it: the drain goes on past the pass that failed in
		// part (it stopped there, with 1,501 events left recorded).
		{"one times out before two batches", 2500, map[int64]error{10: timeout}, 2499, "[]", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := &App{log: slog.New(slog.DiscardHandler), metrics: NewMetrics()}
			st := newRecordedStore(tt.events, tt.bad)
			a.applier = newApplier(a, st, 1000, 0)
			if !tt.wantErr { // one pass does it all
				n, err := a.applier.pass(context.Background(), rewards.Claim{Status: rewards.StatusRecorded, Limit: 1000})
				if n != tt.wantApplied || err != nil {
					t.Fatalf("one pass = %d, %v; %d still recorded", n, err, len(st.recorded))
				}
				st = newRecordedStore(tt.events, tt.bad)
				a.applier = newApplier(a, st, 1000, 0)
			}
			n, err := a.Drain(context.Background())
			if n != tt.wantApplied || (err != nil) != tt.wantErr || fmt.Sprint(st.quarantined) != tt.wantQuarantined {
				t.Fatalf("Drain = %d, %v; quarantined %v, %d still recorded; want %d handled, quarantined %s", n, err, st.quarantined,
					len(st.recorded), tt.wantApplied, tt.wantQuarantined)
			}
		})
	}
}

// stuckApplyStore's Apply waits until released: a pass stuck behind a lock. Its backlog
// is one event recorded at oldest.
type stuckApplyStore struct {
	oldest  time.Time
	entered chan struct{}
	release chan struct{}
}

func (s *stuckApplyStore) Apply(ctx context.Context, _ rewards.Claim, _ rewards.Decider) ([]rewards.Applied, error) {
	select {
	case s.entered <- struct{}{}:
	default:
	}
	select {
	case <-s.release:
	case <-ctx.Done():
	}
	return nil, nil
}

func (s *stuckApplyStore) Quarantine(context.Context, int64, string) (string, bool, error) {
	return "", false, nil
}

func (s *stuckApplyStore) Backlog(context.Context) (rewards.Backlog, error) {
	return rewards.Backlog{Events: 1, OldestRecord: s.oldest}, nil
}

// The age of the oldest recorded event keeps growing on /metrics while a pass is stuck:
// refreshed between passes, it stayed at its age when the pass began, so an alert on it
// fired a whole pass late.
func TestOldestRecordedGaugeGrowsDuringAStuckPass(t *testing.T) {
	a := &App{log: slog.New(slog.DiscardHandler), metrics: NewMetrics()}
	st := &stuckApplyStore{oldest: time.Now().Add(-time.Second), entered: make(chan struct{}, 1), release: make(chan struct{})}
	a.applier = newApplier(a, st, 10, 0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.RunApplier(ctx); close(done) }()
	defer func() { close(st.release); cancel(); <-done }()
	<-st.entered
	gauge := func() float64 {
		rec := httptest.NewRecorder()
		a.metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		m := regexp.MustCompile(`(?m)^tally_apply_oldest_recorded_seconds (\S+)$`).FindStringSubmatch(rec.Body.String())
		if m == nil {
			t.Fatal("no tally_apply_oldest_recorded_seconds on /metrics")
		}
		v, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	// The pass is stuck from its start; the gauge must pass the age the event had then.
	deadline := time.Now().Add(3*backlogEvery + 5*time.Second)
	for gauge() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("tally_apply_oldest_recorded_seconds = %.1f while the oldest recorded event is %.1f s old",
				gauge(), time.Since(st.oldest).Seconds())
		}
		time.Sleep(50 * time.Millisecond) // polling a condition, with a deadline
	}
}

// outageStore fails every Apply while down, as a database that is unreachable does, and
// applies the recorded events once it is back; it closes failed at its first failure
// and drained once nothing is left.
type outageStore struct {
	down            atomic.Bool
	rec             *recordedStore
	failed, drained chan struct{}
	once1, once2    sync.Once
}

func (s *outageStore) Apply(ctx context.Context, c rewards.Claim, decide rewards.Decider) ([]rewards.Applied, error) {
	if s.down.Load() {
		s.once1.Do(func() { close(s.failed) })
		return nil, fmt.Errorf("%w: connection refused", rewards.ErrUnavailable)
	}
	out, err := s.rec.Apply(ctx, c, decide)
	if len(s.rec.recorded) == 0 {
		s.once2.Do(func() { close(s.drained) })
	}
	return out, err
}

func (s *outageStore) Quarantine(context.Context, int64, string) (string, bool, error) {
	panic("an outage quarantined an event")
}

func (s *outageStore) Backlog(context.Context) (rewards.Backlog, error) {
	return rewards.Backlog{}, nil
}

// After a pass failed for an outage, the applier waits a growing pause (up to 10 s)
// before it tries again; a receiver's commit (wake) says the database is back, and the
// applier tries again within a second of the failure instead of waiting the pause out
// while the backlog grows. The pause here is an hour, so only the wake can end it.
func TestApplierRetriesSoonOnceEventsAreRecordedAgain(t *testing.T) {
	a := &App{log: slog.New(slog.DiscardHandler), metrics: NewMetrics()}
	st := &outageStore{rec: newRecordedStore(5, nil), failed: make(chan struct{}), drained: make(chan struct{})}
	st.down.Store(true)
	a.applier = newApplier(a, st, 10, time.Hour)
	a.applier.retryFirst, a.applier.retryMax, a.applier.retryRecorded = time.Hour, time.Hour, 10*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.RunApplier(ctx) }()
	defer func() { cancel(); <-done }()
	<-st.failed
	st.down.Store(false)
	a.applier.wake()
	select {
	case <-st.drained:
	case <-time.After(30 * time.Second):
		t.Fatal("the backlog was not applied after the wake: the applier waited out its pause")
	}
}

// stuckEventStore holds recorded events 1..n; event 1 fails every time for a reason not
// its own (a lock wait), so it stays recorded while the others apply. It closes passed
// after its first pass.
type stuckEventStore struct {
	rec    *recordedStore
	passed chan struct{}
	once   sync.Once
}

func (s *stuckEventStore) Apply(ctx context.Context, c rewards.Claim, decide rewards.Decider) ([]rewards.Applied, error) {
	out, err := s.rec.Apply(ctx, c, decide)
	if len(s.rec.recorded) == 1 {
		s.once.Do(func() { close(s.passed) })
	}
	return out, err
}

func (s *stuckEventStore) Quarantine(context.Context, int64, string) (string, bool, error) {
	panic("a lock wait quarantined an event")
}

func (s *stuckEventStore) Backlog(context.Context) (rewards.Backlog, error) {
	return rewards.Backlog{}, nil
}

// A pass that applied some events and left one recorded (it failed for a reason not its
// own) is followed by the next after the usual poll, wakes or not: with a wake cutting
// every pause short, receivers committing all the time ran passes back to back, each
// failing about eleven times at the stuck event (800 passes a second).
func TestApplierWokenAfterAPartialFailureWaitsThePoll(t *testing.T) {
	a := &App{log: slog.New(slog.DiscardHandler), metrics: NewMetrics()}
	st := &stuckEventStore{rec: newRecordedStore(5, map[int64]error{1: errors.New("lock wait timeout")}), passed: make(chan struct{})}
	a.applier = newApplier(a, st, 10, time.Hour)
	a.applier.retryRecorded = time.Hour
	waits := make(chan time.Duration, 1)
	a.applier.kickedAfterFailure = func(d time.Duration) { waits <- d }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.RunApplier(ctx) }()
	defer func() { cancel(); <-done }()
	<-st.passed
	a.applier.wake()
	if d := <-waits; d < 30*time.Minute {
		t.Fatalf("a wake after a partial failure waits %s, want the poll (1h)", d)
	}
}
