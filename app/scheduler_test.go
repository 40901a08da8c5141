package app

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

// syncBuffer is a log sink the cron goroutines and the test can share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testLogger() (*slog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelInfo})), buf
}

// manual is a trigger the test fires by hand: no clock, no sleeps.
type manual struct {
	fire    func()
	stopped chan struct{} // closed when schedule's stop stops the trigger
}

func newManual() *manual { return &manual{stopped: make(chan struct{})} }

func (m *manual) trigger(fire func()) func() {
	m.fire = fire
	return func() { close(m.stopped) }
}

func TestScheduleRejectsBadSpec(t *testing.T) {
	t.Parallel()
	for _, spec := range []string{"", "every minute", "0 * * * * *", "@every nope"} {
		if _, err := cronTrigger(spec, slog.New(slog.DiscardHandler)); err == nil {
			t.Errorf("cronTrigger(%q) accepted", spec)
		}
	}
}

// The cron trigger runs the job on its schedule (the test waits for the first run).
func TestCronTriggerRunsTheJob(t *testing.T) {
	t.Parallel()
	trig, err := cronTrigger("@every 1s", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ran := make(chan struct{}, 1)
	stop := schedule(context.Background(), trig, slog.New(slog.DiscardHandler), nil, func(context.Context) {
		select {
		case ran <- struct{}{}:
		default:
		}
	})
	<-ran
	stop()
}

// A panicking run is logged and recovered, and the schedule keeps running: the next
// fire runs the job again (it would not if the skip guard lost its token in the panic).
func TestSchedulePanicIsRecoveredAndScheduleContinues(t *testing.T) {
	t.Parallel()
	log, buf := testLogger()
	m := newManual()
	var calls atomic.Int32
	stop := schedule(context.Background(), m.trigger, log, nil, func(context.Context) {
		if calls.Add(1) == 1 {
			panic("boom")
		}
	})
	defer stop()
	m.fire()
	if s := buf.String(); !strings.Contains(s, "recovered") || !strings.Contains(s, "boom") {
		t.Fatalf("the panic was not logged:\n%s", s)
	}
	m.fire()
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d runs after a panicking one and another fire, want 2; logs:\n%s", n, buf.String())
	}
}

// Runs never overlap: a fire while a run is still going is skipped (and logged), not
// queued beside it; once the run returns, the next fire runs again.
func TestScheduleNeverOverlaps(t *testing.T) {
	t.Parallel()
	log, buf := testLogger()
	m := newManual()
	var calls atomic.Int32
	started, release := make(chan struct{}), make(chan struct{})
	var skipped atomic.Int32
	stop := schedule(context.Background(), m.trigger, log, func() { skipped.Add(1) }, func(context.Context) {
		if calls.Add(1) == 1 {
			close(started)
			<-release
		}
	})
	defer stop()
	first := make(chan struct{})
	go func() { m.fire(); close(first) }()
	<-started
	m.fire() // while the first run is going: skipped, so it returns at once
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d runs at once, want 1", n)
	}
	if !strings.Contains(buf.String(), "skipped") || skipped.Load() != 1 {
		t.Fatalf("the skipped fire was not logged or counted (%d):\n%s", skipped.Load(), buf.String())
	}
	close(release)
	<-first
	m.fire()
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d runs after the first returned and another fire, want 2", n)
	}
}

// stop waits for the run in progress; afterwards nothing runs and the job's context is
// cancelled. The job's context follows the parent's (serve's) cancellation.
func TestScheduleStopWaitsForRunningJob(t *testing.T) {
	t.Parallel()
	m := newManual()
	started, release := make(chan context.Context, 1), make(chan struct{})
	var calls atomic.Int32
	stop := schedule(context.Background(), m.trigger, slog.New(slog.DiscardHandler), nil, func(ctx context.Context) {
		calls.Add(1)
		started <- ctx
		<-release
	})
	go m.fire()
	jobCtx := <-started
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	<-m.stopped // stop has begun: the trigger is stopped, the run is still going
	select {
	case <-stopped:
		t.Fatal("stop returned while the job was still running")
	default:
	}
	if jobCtx.Err() != nil {
		t.Fatal("stop cancelled the running job instead of waiting for it")
	}
	close(release)
	<-stopped
	if jobCtx.Err() == nil {
		t.Fatal("the job's context outlives the schedule")
	}
	m.fire() // a fire after stop (a late tick) runs nothing
	if n := calls.Load(); n != 1 {
		t.Fatalf("the job ran after stop (%d runs)", n)
	}

	// The parent's cancellation reaches a running job.
	parent, cancel := context.WithCancel(context.Background())
	m2 := newManual()
	got, running := make(chan error, 1), make(chan struct{})
	stop2 := schedule(parent, m2.trigger, slog.New(slog.DiscardHandler), nil, func(ctx context.Context) {
		close(running)
		<-ctx.Done()
		got <- ctx.Err()
	})
	go m2.fire()
	<-running
	cancel()
	if err := <-got; err == nil {
		t.Fatal("cancelling the parent context did not reach the running job")
	}
	stop2()
}

func TestLastTick(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct{ spec, now, want string }{
		{"0 2 * * *", "2026-11-22T10:00:00Z", "2026-11-22T02:00:00Z"},
		{"0 2 * * *", "2026-11-22T02:00:00Z", "2026-11-22T02:00:00Z"}, // the tick itself
		{"0 2 * * *", "2026-11-22T01:59:59Z", "2026-11-21T02:00:00Z"},
		{"0 2 * * 1", "2026-11-22T10:00:00Z", "2026-11-16T02:00:00Z"}, // weekly, Mondays
		{"*/5 * * * *", "2026-11-22T10:07:30Z", "2026-11-22T10:05:00Z"},
		{"0 0 1 1 *", "2026-11-22T10:00:00Z", ""}, // none in the last 32 days
		// @every ticks from the schedule's start, whatever the clock says: the tick is now.
		{"@every 45m", "2026-11-22T10:00:00Z", "2026-11-22T10:00:00Z"},
		{"@every 800h", "2026-11-22T10:00:00Z", "2026-11-22T10:00:00Z"},
		{"@daily", "2026-11-22T10:00:00Z", "2026-11-22T00:00:00Z"},
	} {
		sched, err := cron.ParseStandard(c.spec)
		if err != nil {
			t.Fatal(err)
		}
		got := lastTick(sched, at(c.now))
		if (c.want == "" && !got.IsZero()) || (c.want != "" && !got.Equal(at(c.want))) {
			t.Errorf("lastTick(%q, %s) = %v, want %q", c.spec, c.now, got, c.want)
		}
	}
}
