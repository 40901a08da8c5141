package store

import (
	"context"
	"fmt"
	"sync"
	"time"

	"gorm.io/gorm"

	"tally/rewards"
)

// attemptBatch is the most delivery attempts one SQLite transaction records.
const attemptBatch = 64

// attemptTimeout bounds a transaction of attemptRecorder.
const attemptTimeout = 10 * time.Second

// attemptRecorder records delivery attempts on SQLite, the ones that arrive while a
// transaction runs in the next one. SQLite has one writer, and each attempt recorded in
// a transaction of its own took the write lock and synced the log once: beside the
// receivers, the applier and settlement of a small publisher's load (about 150 events a
// second), delivery fell behind by minutes and kept falling (review helper 211: 99-127
// recordings a second against 135 changes). Each attempt has a savepoint of its own, so
// one that fails leaves the others recorded. Postgres records each attempt in its own
// transaction, several at once: one transaction for several would take their rows and
// endpoints' rows in an order other recordings do not keep.
type attemptRecorder struct {
	db   *DB
	asks chan *attemptAsk
	stop chan struct{}
	once sync.Once
	wg   sync.WaitGroup
	// beforeBatch, set only by tests, runs before each transaction with its number of
	// attempts.
	beforeBatch func(n int)
}

type attemptAsk struct {
	ctx   context.Context
	a     rewards.DeliveryAttempt
	reply chan attemptReply // buffered: the recorder never waits for the asker
}

type attemptReply struct {
	recorded, disabled bool
	err                error
}

func newAttemptRecorder(db *DB) *attemptRecorder {
	r := &attemptRecorder{db: db, asks: make(chan *attemptAsk), stop: make(chan struct{})}
	r.wg.Go(r.run)
	return r
}

// close stops the recorder after the transaction it runs; an attempt still waiting is
// answered ErrUnavailable, and is not recorded.
func (r *attemptRecorder) close() {
	r.once.Do(func() { close(r.stop) })
	r.wg.Wait()
}

var errAttemptsClosed = fmt.Errorf("store: closed: %w", rewards.ErrUnavailable)

// record is RecordAttempt on SQLite.
func (r *attemptRecorder) record(ctx context.Context, a rewards.DeliveryAttempt) (recorded, disabled bool, err error) {
	ask := &attemptAsk{ctx: ctx, a: a, reply: make(chan attemptReply, 1)}
	select {
	case r.asks <- ask:
	case <-r.stop:
		return false, false, errAttemptsClosed
	case <-ctx.Done():
		return false, false, translate(ctx.Err())
	}
	// Taken into a batch, it is recorded or not by the batch, whatever ctx does meanwhile
	// (recordAll skips it if ctx has ended by then): the answer waits for the batch, so a
	// recording reported failed was not committed. Answering at ctx's end left a failure
	// that disabled its endpoint recorded but reported failed, and the worker never
	// logged the endpoint disabled nor counted it (review helper 213). The batch's own
	// deadline (attemptTimeout) bounds the wait.
	rep := <-ask.reply
	return rep.recorded, rep.disabled, rep.err
}

// run takes the first attempt that comes, with every other one already waiting (up to
// attemptBatch), and records them in one transaction.
func (r *attemptRecorder) run() {
	batch := make([]*attemptAsk, 0, attemptBatch)
	for {
		select {
		case <-r.stop:
			return
		case a := <-r.asks:
			batch = gather(append(batch[:0], a), r.asks, attemptBatch)
		}
		r.recordAll(batch)
		clear(batch)
	}
}

// gather appends to batch what is already waiting on asks, up to max in all, without
// waiting for more.
func gather[T any](batch []T, asks <-chan T, max int) []T {
	for len(batch) < max {
		select {
		case a := <-asks:
			batch = append(batch, a)
		default:
			return batch
		}
	}
	return batch
}

// recordAll records batch in one transaction and answers each ask.
func (r *attemptRecorder) recordAll(batch []*attemptAsk) {
	live := batch[:0]
	for _, a := range batch {
		if err := a.ctx.Err(); err != nil {
			a.reply <- attemptReply{err: translate(err)}
			continue
		}
		live = append(live, a)
	}
	if len(live) == 0 {
		return
	}
	if r.beforeBatch != nil {
		r.beforeBatch(len(live))
	}
	replies := make([]attemptReply, len(live))
	ctx, cancel := context.WithTimeout(context.Background(), attemptTimeout)
	defer cancel()
	err := r.db.tx(ctx, func(tx *gorm.DB) error {
		now := r.db.now()
		for i, a := range live {
			if _, err := rawExec(tx, `SAVEPOINT attempt`); err != nil {
				return err
			}
			rep := &replies[i]
			rep.recorded, rep.disabled, rep.err = recordAttempt(tx, now, a.a)
			if rep.err != nil {
				rep.recorded, rep.disabled, rep.err = false, false, translate(rep.err)
				if _, err := rawExec(tx, `ROLLBACK TO SAVEPOINT attempt`); err != nil {
					return err
				}
			}
			if _, err := rawExec(tx, `RELEASE SAVEPOINT attempt`); err != nil {
				return err
			}
		}
		return nil
	})
	for i, a := range live {
		if err != nil {
			replies[i] = attemptReply{err: err}
		}
		a.reply <- replies[i]
	}
}
