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

func TestScheduleRejectsBadSpec(t *testing.T) {
	t.Parallel()
	for _, spec := range []string{"", "every minute", "0 * * * * *", "@every nope"} {
		stop, err := schedule(context.Background(), spec, slog.New(slog.DiscardHandler), func(context.Context) {})
		if err == nil {
			stop()
			t.Errorf("schedule(%q) accepted", spec)
		}
	}
}

// A panicking run is logged and recovered, and the schedule keeps running: the next
// tick runs the job again (it would not if the skip guard lost its token in the panic).
func TestSchedulePanicIsRecoveredAndScheduleContinues(t *testing.T) {
	t.Parallel()
	log, buf := testLogger()
	var calls atomic.Int32
	again := make(chan struct{})
	stop, err := schedule(context.Background(), "@every 1s", log, func(context.Context) {
		switch calls.Add(1) {
		case 1:
			panic("boom")
		case 2:
			close(again)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	select {
	case <-again:
	case <-time.After(5 * time.Second):
		t.Fatalf("no run after the panicking one (%d calls); logs:\n%s", calls.Load(), buf.String())
	}
	if s := buf.String(); !strings.Contains(s, "recovered") || !strings.Contains(s, "boom") {
		t.Fatalf("the panic was not logged:\n%s", s)
	}
}

// Runs never overlap: a tick while a run is still going is skipped, not queued beside it.
func TestScheduleNeverOverlaps(t *testing.T) {
	t.Parallel()
	log, buf := testLogger()
	var running, maxRunning, calls atomic.Int32
	stop, err := schedule(context.Background(), "@every 1s", log, func(context.Context) {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			m := maxRunning.Load()
			if n <= m || maxRunning.CompareAndSwap(m, n) {
				break
			}
		}
		calls.Add(1)
		time.Sleep(2500 * time.Millisecond) // spans two more ticks
	})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(4500 * time.Millisecond)
	stop()
	if maxRunning.Load() != 1 || calls.Load() < 1 || calls.Load() > 2 {
		t.Fatalf("%d runs, at most %d at once; want 1 or 2 runs, never 2 at once", calls.Load(), maxRunning.Load())
	}
	if !strings.Contains(buf.String(), "skipped") {
		t.Fatalf("the skipped tick was not logged:\n%s", buf.String())
	}
}

// stop waits for the run in progress; afterwards nothing runs and the job's context is
// cancelled. The job's context follows the parent's (serve's) cancellation.
func TestScheduleStopWaitsForRunningJob(t *testing.T) {
	t.Parallel()
	parent, cancelParent := context.WithCancel(context.Background())
	defer cancelParent()
	started, release := make(chan context.Context, 1), make(chan struct{})
	var calls atomic.Int32
	stop, err := schedule(parent, "@every 1s", slog.New(slog.DiscardHandler), func(ctx context.Context) {
		if calls.Add(1) == 1 {
			started <- ctx
			<-release
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	var jobCtx context.Context
	select {
	case jobCtx = <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("the job never ran")
	}
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("stop returned while the job was still running")
	case <-time.After(300 * time.Millisecond):
	}
	if jobCtx.Err() != nil {
		t.Fatal("stop cancelled the running job instead of waiting for it")
	}
	close(release)
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("stop did not return after the job finished")
	}
	if jobCtx.Err() == nil {
		t.Fatal("the job's context outlives the schedule")
	}
	n := calls.Load()
	time.Sleep(1500 * time.Millisecond)
	if calls.Load() != n {
		t.Fatalf("the job ran after stop")
	}

	// The parent's cancellation reaches a running job.
	parent2, cancel2 := context.WithCancel(context.Background())
	got, running := make(chan error, 1), make(chan struct{}, 1)
	stop2, err := schedule(parent2, "@every 1s", slog.New(slog.DiscardHandler), func(ctx context.Context) {
		running <- struct{}{}
		select {
		case <-ctx.Done():
			got <- ctx.Err()
		case <-time.After(10 * time.Second):
			got <- nil
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-running:
	case <-time.After(5 * time.Second):
		t.Fatal("the job never ran")
	}
	cancel2()
	if err := <-got; err == nil {
		t.Fatal("cancelling the parent context did not reach the running job")
	}
	stop2()
}
