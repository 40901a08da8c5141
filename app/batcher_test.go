package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"tally/rewards"
)

// fakeIngester records batches; it can panic or block until released.
type fakeIngester struct {
	mu      sync.Mutex
	batches [][]rewards.Inbound
	panics  bool
	entered chan struct{} // if set, receives once per Ingest call before it blocks
	release chan struct{} // if set, Ingest waits for it to close
}

func (f *fakeIngester) Record(ctx context.Context, batch []rewards.Inbound) ([]rewards.Receipt, error) {
	if f.entered != nil {
		f.entered <- struct{}{}
	}
	if f.release != nil {
		<-f.release
	}
	if f.panics {
		panic("boom")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batches = append(f.batches, batch)
	out := make([]rewards.Receipt, len(batch))
	for i := range out {
		out[i] = rewards.Receipt{EventID: int64(len(f.batches)*1000 + i), Status: rewards.StatusApplied}
	}
	return out, nil
}

func event(key string) rewards.Inbound {
	return rewards.Inbound{Property: "p", Event: rewards.Event{Source: rewards.SourceGamezopSPP, DedupeKey: key}}
}

func TestBatcherPanicIsUnavailableNotAnswered(t *testing.T) {
	b := newBatcher(&fakeIngester{panics: true}, 1, 8, slog.New(slog.DiscardHandler), NewMetrics())
	defer b.stop()
	_, err := b.submit(context.Background(), event("k"))
	if !errors.Is(err, rewards.ErrUnavailable) {
		t.Fatalf("submit after a panicking commit = %v, want ErrUnavailable (503, retry)", err)
	}
}

func TestBatcherGroupsQueuedEvents(t *testing.T) {
	f := &fakeIngester{entered: make(chan struct{}, 16), release: make(chan struct{})}
	b := newBatcher(f, 1, 64, slog.New(slog.DiscardHandler), NewMetrics())
	var wg sync.WaitGroup
	submit := func(k string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := b.submit(context.Background(), event(k)); err != nil {
				t.Error(err)
			}
		}()
	}
	submit("first")
	<-f.entered // the first commit is open and held
	for i := 0; i < 9; i++ {
		submit(string(rune('a' + i)))
	}
	waitQueued(t, b, 9)
	close(f.release)
	wg.Wait()
	b.stop()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.batches) != 2 || len(f.batches[1]) != 9 {
		t.Fatalf("commits of %v events, want the nine queued ones sharing the second", batchSizes(f.batches))
	}
}

func batchSizes(bs [][]rewards.Inbound) []int {
	out := make([]int, len(bs))
	for i, b := range bs {
		out[i] = len(b)
	}
	return out
}

func TestBatcherStopCommitsQueuedAndRefusesNew(t *testing.T) {
	f := &fakeIngester{entered: make(chan struct{}, 16), release: make(chan struct{})}
	b := newBatcher(f, 1, 4, slog.New(slog.DiscardHandler), NewMetrics())
	results := make(chan error, 3)
	submit := func(k string) {
		go func() {
			_, err := b.submit(context.Background(), event(k))
			results <- err
		}()
	}
	submit("a")
	<-f.entered
	submit("b")
	submit("c")
	waitQueued(t, b, 2)
	stopped := make(chan struct{})
	go func() { b.stop(); close(stopped) }()
	close(f.release)
	<-stopped
	for i := 0; i < 3; i++ {
		if err := <-results; err != nil {
			t.Fatalf("a job queued before stop was not committed: %v", err)
		}
	}
	if _, err := b.submit(context.Background(), event("late")); !errors.Is(err, rewards.ErrUnavailable) {
		t.Fatalf("submit after stop = %v, want ErrUnavailable", err)
	}
}

// slowIngester is a database too slow for one request's deadline: a batch holding the
// key "old" commits only when its context ends (and then fails); any other commits.
type slowIngester struct {
	fakeIngester
}

func (f *slowIngester) Record(ctx context.Context, batch []rewards.Inbound) ([]rewards.Receipt, error) {
	for _, in := range batch {
		if in.Event.DedupeKey == "old" {
			f.mu.Lock()
			f.batches = append(f.batches, batch)
			f.mu.Unlock()
			<-ctx.Done()
			return nil, ctx.Err()
		}
	}
	return f.fakeIngester.Record(ctx, batch)
}

// A request whose deadline is near cuts its group commit short; the other requests of
// the batch are then committed again together, not one commit each. One by one, when
// the database is slow, most of them ran out of time too.
func TestBatcherCommitsTheOthersTogetherWhenOneRequestRunsOutOfTime(t *testing.T) {
	f := &slowIngester{fakeIngester{entered: make(chan struct{}, 16), release: make(chan struct{})}}
	b := newBatcher(f, 1, 64, slog.New(slog.DiscardHandler), NewMetrics())
	defer b.stop()
	results := make(chan error, 10)
	go func() { _, err := b.submit(context.Background(), event("first")); results <- err }()
	<-f.entered // the first commit is held; the rest queue behind it
	old, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	oldErr := make(chan error, 1)
	go func() { _, err := b.submit(old, event("old")); oldErr <- err }()
	waitQueued(t, b, 1)
	for i := range 9 {
		go func() { _, err := b.submit(context.Background(), event(string(rune('a'+i)))); results <- err }()
	}
	waitQueued(t, b, 10)
	f.entered = nil
	close(f.release)
	for range 10 {
		if err := <-results; err != nil {
			t.Fatalf("a request with time left failed: %v", err)
		}
	}
	if err := <-oldErr; !errors.Is(err, rewards.ErrUnavailable) {
		t.Fatalf("the request whose time ran out: %v, want ErrUnavailable (503)", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if got := batchSizes(f.batches); len(got) != 3 || got[1] != 10 || got[2] != 9 {
		t.Fatalf("commits of %v events, want [1 10 9]: the nine with time left committed again together", got)
	}
}

// waitQueued waits until n jobs wait in the queue (a worker holds one more).
func waitQueued(t *testing.T, b *batcher, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); len(b.jobs) < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d jobs queued, want %d", len(b.jobs), n)
		}
	}
}

// lostCommitIngester loses the answer of its first group commit (it committed), then
// either is unreachable (down) or finds each event's row, that commit's, as a duplicate.
type lostCommitIngester struct {
	fakeIngester
	down  bool
	calls int
}

func (f *lostCommitIngester) Record(ctx context.Context, batch []rewards.Inbound) ([]rewards.Receipt, error) {
	if f.entered != nil {
		f.entered <- struct{}{}
	}
	if f.release != nil {
		<-f.release
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	switch {
	case f.calls == 1: // the first event, alone
		return []rewards.Receipt{{EventID: 1, Status: rewards.StatusRecorded}}, nil
	case f.calls == 2:
		return nil, fmt.Errorf("%w: %w: commit unanswered", rewards.ErrUnavailable, rewards.ErrOutcomeUnknown)
	case f.down:
		return nil, fmt.Errorf("%w: connection refused", rewards.ErrUnavailable)
	}
	return []rewards.Receipt{{EventID: 2, Duplicate: true, Status: rewards.StatusRecorded}}, nil
}

// A group commit whose answer was lost may have saved its events: retried one by one
// against a database still unreachable, each is answered outcome-unknown, never
// "nothing was saved" (503 unavailable); found by the retry, the applier is woken, as
// for a new event. Both were so for a batch of one only.
func TestBatcherLostGroupCommitIsNeverNothingSaved(t *testing.T) {
	for _, down := range []bool{true, false} {
		f := &lostCommitIngester{fakeIngester: fakeIngester{entered: make(chan struct{}, 16), release: make(chan struct{})}, down: down}
		b := newBatcher(f, 1, 64, slog.New(slog.DiscardHandler), NewMetrics())
		woken := make(chan struct{}, 16)
		b.wake = func() { woken <- struct{}{} }
		results, first := make(chan error, 5), make(chan error, 1)
		go func() { _, err := b.submit(context.Background(), event("first")); first <- err }()
		<-f.entered // the first commit is held; the rest queue behind it
		for i := range 5 {
			go func() { _, err := b.submit(context.Background(), event(fmt.Sprint("k", i))); results <- err }()
		}
		waitQueued(t, b, 5)
		f.entered = nil
		close(f.release)
		if err := <-first; err != nil {
			t.Fatal(err)
		}
		for range 5 {
			err := <-results
			switch {
			case down && (!errors.Is(err, rewards.ErrOutcomeUnknown)):
				t.Errorf("down: %v, want outcome unknown", err)
			case !down && err != nil:
				t.Errorf("found by the retry: %v", err)
			}
		}
		if !down && len(woken) != 5 {
			t.Errorf("the applier was woken %d times for the 5 events found, want 5", len(woken))
		}
		b.stop()
	}
}

// A request that gives up while its event's commit runs is answered outcome unknown
// (the commit may hold it), not "nothing was saved"; one that gives up while its event
// still waits in the queue is answered nothing saved, and the event is never written.
func TestBatcherRequestEndingDuringItsCommitIsOutcomeUnknown(t *testing.T) {
	f := &fakeIngester{entered: make(chan struct{}, 16), release: make(chan struct{})}
	b := newBatcher(f, 1, 1, slog.New(slog.DiscardHandler), NewMetrics())
	committing, cancelCommitting := context.WithCancel(context.Background())
	queued, cancelQueued := context.WithCancel(context.Background())
	errs := make(chan error, 2)
	go func() { _, err := b.submit(committing, event("committing")); errs <- err }()
	<-f.entered // its commit is open and held
	go func() { _, err := b.submit(queued, event("queued")); errs <- err }()
	waitQueued(t, b, 1)

	cancelCommitting()
	if err := <-errs; !errors.Is(err, rewards.ErrOutcomeUnknown) {
		t.Errorf("request ended during its commit: %v, want outcome unknown", err)
	}
	cancelQueued()
	if err := <-errs; !errors.Is(err, rewards.ErrUnavailable) || errors.Is(err, rewards.ErrOutcomeUnknown) {
		t.Errorf("request ended while queued: %v, want unavailable (nothing saved)", err)
	}
	close(f.release)
	b.stop()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.batches) != 1 || f.batches[0][0].Event.DedupeKey != "committing" {
		t.Errorf("committed %v, want only the event whose commit ran", f.batches)
	}
}
