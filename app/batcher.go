package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"tally/rewards"
)

// batcher group-commits ingest: each request hands its event to a worker, which takes
// whatever else is queued (up to max) and records it all with one statement. Under load
// many requests share one commit; with no load a request is written alone at once, so
// nothing waits on a timer. Each request is answered only after its commit, and never
// after its own deadline: a job whose request has given up is not written, and a batch
// is bounded by the earliest deadline among its jobs.
type batcher struct {
	store   Recorder
	jobs    chan *ingestJob
	quit    chan struct{}
	max     int
	log     *slog.Logger
	metrics *Metrics
	wg      sync.WaitGroup
	once    sync.Once
	// mu orders enqueues before stop: submit holds it shared while enqueuing, stop takes
	// it exclusively to set stopped, so every job enqueued is seen by the final drain.
	mu      sync.RWMutex
	stopped bool
	// wake, when set, wakes the applier: run calls it for a job answered duplicate after
	// a commit of it went unanswered (the row is most likely that commit's).
	wake func()
}

type ingestJob struct {
	ctx  context.Context // the request's: its deadline bounds every attempt to write the job
	in   rewards.Inbound
	done chan ingestResult // buffered: a worker never blocks on a requester that gave up
	// maybeSaved: a commit that held the job went unanswered (rewards.ErrOutcomeUnknown),
	// so it may be saved whatever a later attempt says.
	maybeSaved bool
	// taken is set by the worker before it decides whether to write the job, so a
	// request that gives up while it is unset can say nothing was saved: the worker,
	// setting it later, then finds the request gone and drops the job.
	taken atomic.Bool
}

// fail answers the job with err, or as an outcome unknown when an earlier commit of it
// went unanswered: a retry that failed on its own (the database still unreachable) does
// not make "nothing was saved" true.
func (j *ingestJob) fail(err error) {
	if j.maybeSaved && !errors.Is(err, rewards.ErrOutcomeUnknown) {
		err = fmt.Errorf("%w: a commit holding it went unanswered, then: %w", rewards.ErrOutcomeUnknown, err)
	}
	j.done <- ingestResult{err: err}
}

type ingestResult struct {
	receipt rewards.Receipt
	err     error
}

// batchTimeout bounds a group commit whose requests carry no deadline of their own.
const batchTimeout = 15 * time.Second

func newBatcher(st Recorder, workers, max int, log *slog.Logger, m *Metrics) *batcher {
	if workers <= 0 {
		workers = 1
	}
	if max <= 0 {
		max = 256
	}
	b := &batcher{store: st, jobs: make(chan *ingestJob, workers*max), quit: make(chan struct{}), max: max, log: log, metrics: m}
	for i := 0; i < workers; i++ {
		b.wg.Add(1)
		go b.work()
	}
	return b
}

// submit queues one event and waits for its commit. If ctx ends while the event is still
// queued, nothing is written and the answer says so. If it ends once a worker has taken
// the event, the commit may still hold it, so the answer is an outcome unknown; the
// sender's retry then finds it as a duplicate, or records it.
func (b *batcher) submit(ctx context.Context, in rewards.Inbound) (rewards.Receipt, error) {
	j := &ingestJob{ctx: ctx, in: in, done: make(chan ingestResult, 1)}
	if err := b.enqueue(ctx, j); err != nil {
		return rewards.Receipt{}, err
	}
	select {
	case r := <-j.done:
		return r.receipt, r.err
	case <-ctx.Done():
		if j.taken.Load() {
			return rewards.Receipt{}, fmt.Errorf("%w: %w: the request ended while its commit ran: %w", rewards.ErrUnavailable, rewards.ErrOutcomeUnknown, ctx.Err())
		}
		return rewards.Receipt{}, fmt.Errorf("%w: %w", rewards.ErrUnavailable, ctx.Err())
	}
}

func (b *batcher) enqueue(ctx context.Context, j *ingestJob) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.stopped {
		return fmt.Errorf("ingest stopped: %w", rewards.ErrUnavailable)
	}
	select {
	case b.jobs <- j: // workers keep draining until stop, so this cannot block forever
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", rewards.ErrUnavailable, ctx.Err())
	}
}

func (b *batcher) work() {
	defer b.wg.Done()
	for {
		var first *ingestJob
		select {
		case first = <-b.jobs:
		case <-b.quit:
			// Finish what was queued before the stop; requests still wait on it.
			for {
				select {
				case j := <-b.jobs:
					b.run([]*ingestJob{j})
				default:
					return
				}
			}
		}
		batch := []*ingestJob{first}
	fill:
		for len(batch) < b.max {
			select {
			case j := <-b.jobs:
				batch = append(batch, j)
			default:
				break fill
			}
		}
		b.run(batch)
	}
}

// run commits a batch. If the group commit fails as a request's deadline passes, the
// others are committed again together; otherwise each event is retried alone, within
// its own request's deadline, so one event the database refuses cannot fail its
// neighbours. Jobs whose requests have given up are answered and dropped first: nothing
// is written for a request that was answered 503.
func (b *batcher) run(batch []*ingestJob) {
	live := batch[:0]
	for _, j := range batch {
		j.taken.Store(true) // before gone: see taken
	}
	now := time.Now()
	for _, j := range batch {
		if j.gone(now) {
			err := j.ctx.Err()
			if err == nil {
				err = context.DeadlineExceeded // its timer has not fired yet
			}
			j.fail(fmt.Errorf("%w: %w", rewards.ErrUnavailable, err))
			continue
		}
		live = append(live, j)
	}
	batch = live
	if len(batch) == 0 {
		return
	}
	receipts, err := b.commit(batch)
	if err == nil {
		for i, j := range batch {
			if j.maybeSaved && receipts[i].Duplicate && b.wake != nil {
				b.wake() // most likely its own lost commit: new to the applier
			}
			j.done <- ingestResult{receipt: receipts[i]}
		}
		return
	}
	if errors.Is(err, rewards.ErrOutcomeUnknown) {
		for _, j := range batch {
			j.maybeSaved = true
		}
	}
	if len(batch) == 1 {
		batch[0].fail(err)
		return
	}
	if anyExpired(batch) && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || errors.Is(err, rewards.ErrUnavailable)) {
		// The commit is bounded by the earliest deadline among its jobs, so a request
		// close to its own deadline cuts it short: the others go again as one group,
		// without the jobs whose time ran out. One by one, under the load that made the
		// commit slow, they would take a commit each and run out of time in turn.
		b.log.Warn("group commit failed as a request's deadline passed; committing the others again", "events", len(batch), "err", err)
		b.run(batch)
		return
	}
	b.log.Warn("group commit failed; retrying events one by one", "events", len(batch), "err", err)
	for _, j := range batch {
		b.run([]*ingestJob{j})
	}
}

// anyExpired reports whether a job's request has given up.
func anyExpired(batch []*ingestJob) bool {
	now := time.Now()
	for _, j := range batch {
		if j.gone(now) {
			return true
		}
	}
	return false
}

// gone reports whether the job's request has given up or its deadline has passed. The
// deadline is read, not only the context's error: the group commit's own context, bounded
// by the same deadline, may end first, and the job's timer fire a moment later.
func (j *ingestJob) gone(now time.Time) bool {
	if j.ctx.Err() != nil {
		return true
	}
	d, ok := j.ctx.Deadline()
	return ok && !d.After(now)
}

func (b *batcher) commit(batch []*ingestJob) (receipts []rewards.Receipt, err error) {
	defer func() {
		if r := recover(); r != nil {
			b.log.Error("ingest panic", "panic", r, "stack", string(debug.Stack()))
			// Nothing was committed (the transaction rolled back): the sender should retry.
			receipts, err = nil, fmt.Errorf("%w: ingest panic: %v", rewards.ErrUnavailable, r)
		}
	}()
	deadline := time.Now().Add(batchTimeout)
	for _, j := range batch {
		if d, ok := j.ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	in := make([]rewards.Inbound, len(batch))
	for i, j := range batch {
		in[i] = j.in
	}
	start := time.Now()
	receipts, err = b.store.Record(ctx, in)
	b.metrics.batchSize.Observe(float64(len(batch)))
	b.metrics.commitSeconds.Observe(time.Since(start).Seconds())
	if err == nil && len(receipts) != len(batch) {
		err = fmt.Errorf("%w: store returned %d receipts for %d events", rewards.ErrUnavailable, len(receipts), len(batch))
	}
	return receipts, err
}

// stop lets the workers finish the queue and exit. Call it after the HTTP server has
// drained, so no request is still submitting.
func (b *batcher) stop() {
	b.once.Do(func() {
		b.mu.Lock()
		b.stopped = true
		b.mu.Unlock()
		close(b.quit)
	})
	b.wg.Wait()
}
