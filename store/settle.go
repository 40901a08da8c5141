package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/shopspring/decimal"
	"gorm.io/gorm"

	"tally/rewards"
)

// Settlement moves matured pending credits (lots) to available, a batch of wallets per
// transaction. What makes a lot settle exactly once is data, not a lock: the batch locks
// its wallets, takes their matured lots out of the lots table (one DELETE … RETURNING),
// and writes the ledger entries and the wallets in the same transaction. A second run,
// on this replica or another, finds those lots gone. A run that dies leaves whole
// batches committed and nothing half-applied; the next run picks up the rest because it
// looks for matured lots, not for where the last run stopped.
//
// The lease (lease.go) only keeps replicas from queueing behind each other's wallet
// locks for nothing.

// settleBatchSize is how many wallets one settlement transaction handles. Its statements
// are the same handful whatever its size, so large batches cost few round trips; 5,000
// wallets (about 50,000 lots at ten each) hold their locks for under a second in
// BenchmarkSettle.
const settleBatchSize = 5000

// settleWorkers is how many batches of a run settle at once on Postgres: two keep both
// cores of a small machine busy, one batch's statements running while the other's
// results travel and its Go side works.
const settleWorkers = 2

type settleOptions struct {
	batch      int       // wallets per transaction
	workers    int       // batches at once on Postgres (settleWorkers)
	lock       bool      // take the property's lease (tests turn it off to race runs)
	actor      string    // who asked for the run by hand; "" for the schedule
	by         time.Time // when set and before the run's start, only lots matured by it settle (SettleBy)
	afterBatch func(int) // called after each commit with the number of batches committed so far (tests)
}

// Settle runs one settlement of property: every wallet with lots matured by the run's
// start has them moved from pending to available, rounded down to scale decimal places,
// the remainder carried in pending. The run is recorded and returned with its totals.
//
// actor names who asked for the run by hand ("cli", or the console's admin); "" is the
// schedule. A run asked for by hand is written to the audit log in the transaction that
// records the run's start, before any batch moves money, and its record is kept even
// when it found nothing matured, so the audit entry always names a run.
//
// When another run of the property holds the lease it returns ErrSettlementRunning and
// records nothing. A scheduled run that finds nothing matured records nothing either and
// returns with ID 0; when nothing had matured at its start (settlementDue) it has not
// taken the lease either.
// A run still marked running whose lease has lapsed (its process died)
// is marked abandoned by the next run that takes the lease. On an error or cancellation
// the run is recorded as failed with what its committed batches settled, and returned
// with the error; the next run settles the rest.
func (db *DB) Settle(ctx context.Context, property string, scale int32, actor string) (rewards.SettlementRun, error) {
	return db.settle(ctx, property, scale, settleOptions{batch: settleBatchSize, workers: settleWorkers, lock: true, actor: actor})
}

// SettleBy is a scheduled Settle (no actor) that settles only the lots matured by by,
// the schedule's tick, when by is before the run's start: a run that catches up a tick
// no run settled leaves what matured since for the next tick.
func (db *DB) SettleBy(ctx context.Context, property string, scale int32, by time.Time) (rewards.SettlementRun, error) {
	return db.settle(ctx, property, scale, settleOptions{batch: settleBatchSize, workers: settleWorkers, lock: true, by: by})
}

func (db *DB) settle(ctx context.Context, property string, scale int32, o settleOptions) (rewards.SettlementRun, error) {
	if scale < 0 || scale > rewards.Precision {
		return rewards.SettlementRun{}, fmt.Errorf("store: settle %q: scale %d out of range", property, scale)
	}
	if o.batch <= 0 {
		o.batch = settleBatchSize
	}
	if o.actor == "" {
		// The schedule asks every property at every tick. One with nothing matured, and
		// no run of a dead process to mark abandoned, is answered by one read: it took
		// the lease and wrote and deleted a run row (about seven transactions), 115 a
		// second for a thousand idle properties on a one-minute schedule.
		now := db.now()
		sctx, cancel := db.stepContext(ctx)
		due, err := db.settlementDue(sctx, property, cutoffOf(now, o.by))
		cancel()
		if err != nil {
			return rewards.SettlementRun{}, fmt.Errorf("store: settle %q: %w", property, err)
		}
		if !due {
			return rewards.SettlementRun{Property: property, Status: rewards.RunCompleted, StartedAt: now, FinishedAt: now,
				Amount: decimal.Zero}, nil
		}
	}
	lease, holder := "settle:"+property, newHolder()
	if o.lock {
		sctx, cancel := db.stepContext(ctx)
		ok, err := db.acquireLease(sctx, lease, holder)
		cancel()
		if err != nil {
			return rewards.SettlementRun{}, err
		}
		if !ok {
			return rewards.SettlementRun{}, fmt.Errorf("store: settle %q: %w", property, rewards.ErrSettlementRunning)
		}
		defer func() {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			_ = db.releaseLease(ctx, lease, holder)
		}()
	}
	sctx, cancel := db.stepContext(ctx)
	run, err := db.startRun(sctx, property, o.lock, o.actor)
	cancel()
	if err != nil {
		return rewards.SettlementRun{}, err
	}
	err = db.settleWallets(ctx, run, scale, o, lease, holder)
	// Recorded even when ctx is cancelled: the batches it committed are real.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	// The run's row holds what its batches committed, each batch's counts written in its
	// own transaction: the only count that holds a batch whose commit reached Postgres
	// while its context was cancelled (it reported an error, yet committed).
	if rerr := db.loadRunCounts(fctx, &run); rerr != nil {
		err = errors.Join(err, rerr)
	}
	run.Status, run.FinishedAt = rewards.RunCompleted, db.now()
	if err != nil {
		run.Status, run.Error = rewards.RunFailed, err.Error()
	}
	if err == nil && run.Users == 0 && run.Entries == 0 && o.actor == "" {
		// Nothing had matured: the run leaves no record, so the history shows the runs
		// that moved money (and the failures), not one empty run per tick and replica —
		// with two replicas the second finds the lease free right after the first.
		// Nothing references the row: no lot or entry was settled by it.
		if _, derr := db.execAlone(fctx, `DELETE FROM settlements WHERE id = ?`, run.ID); derr != nil {
			return run, fmt.Errorf("store: drop empty settlement %d: %w", run.ID, translate(derr))
		}
		run.ID = 0
		return run, nil
	}
	// The counters are not written here: each batch wrote them with its own commit.
	_, ferr := db.execAlone(fctx, `UPDATE settlements SET status = ?, finished_at = ?, error = ? WHERE id = ?`,
		run.Status, run.FinishedAt, run.Error, run.ID)
	ferr = translate(ferr)
	if err == nil && ferr != nil {
		err = fmt.Errorf("store: record settlement %d: %w", run.ID, ferr)
	}
	return run, err
}

// cutoffOf is a run's cutoff, the time its settled lots matured by: its start, or by
// (SettleBy) when that is earlier.
func cutoffOf(start, by time.Time) time.Time {
	if !by.IsZero() && by.Before(start) {
		return by
	}
	return start
}

// settlementDue reports whether a scheduled run of property has anything to do: a lot
// matured by cutoff, or a run still marked running as its newest, which the run marks
// abandoned when its process died. Lots a run leaves on purpose (a pending debit larger
// than what has matured) keep it true, and that property runs each tick as every
// property did before.
//
// The lot is looked for as the walk's first step is (maturedWalletsSQL), in
// lots_property's order: an EXISTS let Postgres plan a scan of every lot of every
// property when the others had many matured lots (it expects to stop at the first
// match, and an idle property has none). In that order an idle property's check reads
// its own unsettled lots' index entries, as the walk did.
func (db *DB) settlementDue(ctx context.Context, property string, cutoff time.Time) (bool, error) {
	var due int
	err := db.gorm.WithContext(ctx).Raw(settlementDueSQL, property, cutoff, property, rewards.RunRunning).Scan(&due).Error
	return due == 1, translate(err)
}

// settlementDueSQL is settlementDue's query: arguments property, cutoff, property, the
// running status.
const settlementDueSQL = `SELECT CASE WHEN (SELECT wallet_id FROM lots WHERE property = ? AND settlement_id IS NULL
		AND matures_at <= ? ORDER BY wallet_id LIMIT 1) IS NOT NULL
	OR (SELECT status FROM settlements WHERE property = ? ORDER BY id DESC LIMIT 1) = ? THEN 1 ELSE 0 END`

// loadRunCounts reads the counters of run's row into run. On Postgres it reads them
// FOR UPDATE, so it waits for a batch whose commit is still in flight on the server
// (its client gave up on a cancel, the commit past its cancellable point) instead of
// reading the counts from before it.
func (db *DB) loadRunCounts(ctx context.Context, run *rewards.SettlementRun) error {
	row, err := runCounts(db.gorm.WithContext(ctx), run.ID, true)
	if err != nil {
		return fmt.Errorf("store: read settlement %d: %w", run.ID, translate(err))
	}
	run.Users, run.Entries, run.Amount = row.Users, row.Entries, row.Amount
	return nil
}

// runCounts reads the counters (users, entries, amount) of run runID's row, locking it
// on Postgres when lock is set.
func runCounts(tx *gorm.DB, runID int64, lock bool) (runRow, error) {
	q := `SELECT users, entries, amount FROM settlements WHERE id = ?`
	if lock && tx.Dialector.Name() == string(Postgres) {
		q += ` FOR UPDATE`
	}
	var row runRow
	err := tx.Raw(q, runID).Scan(&row).Error
	return row, err
}

// startRun records a new running run, and who asked for it when actor is not "". Its
// owner, holding the lease, knows no other run of the property is alive, so any row still
// running belongs to a process that died.
func (db *DB) startRun(ctx context.Context, property string, owner bool, actor string) (rewards.SettlementRun, error) {
	run := rewards.SettlementRun{Property: property, Status: rewards.RunRunning, Amount: decimal.Zero}
	err := db.tx(ctx, func(tx *gorm.DB) error {
		now := db.now()
		if owner {
			err := tx.Exec(`UPDATE settlements SET status = ?, finished_at = ?, error = ? WHERE property = ? AND status = ?`,
				rewards.RunAbandoned, now, "its process stopped before finishing; committed batches stand and later runs settle the rest",
				property, rewards.RunRunning).Error
			if err != nil {
				return err
			}
		}
		run.StartedAt = now
		if err := tx.Raw(`INSERT INTO settlements (property, status, started_at) VALUES (?, ?, ?) RETURNING id`,
			property, rewards.RunRunning, now).Scan(&run.ID).Error; err != nil {
			return err
		}
		if actor == "" {
			return nil
		}
		return writeAudit(tx, rewards.AuditEntry{Actor: actor, Action: rewards.AuditSettlement, Property: property,
			Target: fmt.Sprintf("settlement:%d", run.ID), Detail: "settlement started by hand; GET /v1/admin/settlements has its outcome",
			CreatedAt: now})
	})
	return run, err
}

// settleWallets settles, batch by batch, every wallet of the run's property with a lot
// matured by the run's start, or by o.by when that is earlier (SettleBy). Wallets are visited in id order, each once per run. On
// Postgres o.workers batches run at once, each in its own transaction on its own
// wallets: they never wait for each other's wallet locks (only, as they commit, for the
// run's row), and while one waits on Postgres the other's statements run on the other
// core. The first error stops handing out batches; a batch already running finishes (or
// fails) on its own, and batches committed stand. Each batch counts itself in the run's
// row (addToRun).
//
// On Postgres a batch skips the wallets whose lock another transaction holds (an
// applier crediting one, or a session idle in a transaction holding one), and they are
// settled once the batches are done, in batches that wait for their locks. So one wallet
// held for good delays only its own last batch, which fails the run at heldWalletWait,
// not every wallet after it in id order, run after run.
func (db *DB) settleWallets(ctx context.Context, run rewards.SettlementRun, scale int32, o settleOptions, lease, holder string) error {
	cutoff := cutoffOf(run.StartedAt, o.by)
	workers := max(1, o.workers)
	if db.dialect != Postgres {
		workers = 1 // SQLite has one writer
	}
	// stop ends the handing out of batches, never a batch's own transaction: a commit
	// cut short by a cancelled context may have committed all the same.
	dispatch, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	var (
		mu       sync.Mutex
		n        int
		firstErr error
		wg       sync.WaitGroup
		skipped  []int64 // wallets a batch found locked by another transaction
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = err
			stop(err)
		}
	}
	// committed counts a committed batch, for the tests' afterBatch.
	committed := func() {
		mu.Lock()
		defer mu.Unlock()
		n++
		if o.afterBatch != nil {
			o.afterBatch(n)
		}
	}
	// renew renews the lease, just before a batch: on SQLite the renewal is a write, which
	// must not wait behind a batch's write lock.
	renew := func() error {
		if !o.lock {
			return nil
		}
		sctx, cancel := db.stepContext(ctx)
		ok, err := db.renewLease(sctx, lease, holder)
		cancel()
		if err == nil && !ok {
			err = fmt.Errorf("store: settle %q: lease lost: %w", run.Property, rewards.ErrSettlementRunning)
		}
		return err
	}
	batches := make(chan []int64)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ids := range batches {
				if dispatch.Err() != nil {
					// Another batch failed, or the run was cancelled: this batch is not
					// settled, so the run must not read as complete.
					fail(translate(context.Cause(dispatch)))
					continue
				}
				if err := renew(); err != nil {
					fail(err)
					continue
				}
				held, err := db.settleBatchRecovered(ctx, run.ID, scale, cutoff, ids, true)
				if err != nil {
					fail(err)
					continue
				}
				mu.Lock()
				skipped = append(skipped, held...)
				mu.Unlock()
				committed()
			}
		}()
	}
	err := db.eachBatch(dispatch, run.Property, cutoff, o.batch, func(ids []int64) bool {
		if dispatch.Err() != nil {
			return false // select would pick at random between a waiting worker and Done
		}
		select {
		case batches <- ids:
			return true
		case <-dispatch.Done():
			return false
		}
	})
	close(batches)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if err != nil {
		return err
	}
	// The wallets skipped as locked: first again without waiting (a wallet an applier held
	// for a moment is free by now), then those still locked one at a time, each waiting
	// up to heldWalletWait for its lock. A wallet held for good fails only itself (and the
	// run) then, after every other wallet settled; after heldWalletsTried such failures
	// the rest wait for the next run rather than hold this one for a wait each.
	slices.Sort(skipped)
	var still []int64
	for ids := range slices.Chunk(skipped, o.batch) {
		if err := renew(); err != nil {
			return err
		}
		held, err := db.settleBatchRecovered(ctx, run.ID, scale, cutoff, ids, true)
		if err != nil {
			return err
		}
		still = append(still, held...)
		committed()
	}
	var failed []error
	for _, id := range still {
		if err := renew(); err != nil {
			return errors.Join(append(failed, err)...)
		}
		alone, cancel := context.WithTimeout(ctx, heldWalletWait)
		_, err := db.settleBatchRecovered(alone, run.ID, scale, cutoff, []int64{id}, false)
		cancel()
		if err != nil {
			failed = append(failed, fmt.Errorf("store: settlement %d: wallet %d (skipped as locked by another transaction, then settled alone): %w", run.ID, id, err))
			if ctx.Err() != nil || len(failed) == heldWalletsTried {
				break
			}
			continue
		}
		committed()
	}
	return errors.Join(failed...)
}

// heldWalletsTried is how many wallets locked elsewhere for good (each failing at
// heldWalletWait) a settlement run waits for before leaving the rest to the next run.
const heldWalletsTried = 3

// heldWalletWait bounds the wait for one wallet still locked at a run's end. It waited
// the batch timeout (90 s, three times): the run of that property, and with it the
// scheduled settlement of every property, outlasted the next tick, which was skipped for
// all of them. A wallet held longer waits for the next run.
const heldWalletWait = 10 * time.Second

// settleBatchTimeout bounds one settlement batch (a few thousand wallets: about a second),
// and each of a run's statements outside its batches (the check for anything matured, the
// lease, the run's row).
const settleBatchTimeout = 90 * time.Second

// stepContext is ctx bounded by settleBatchTimeout (or the tests' own). A run's steps
// outside its batches were not bounded: one waiting on a lock (a session left in a
// transaction that had written the property's lease row) held the scheduled sweep, and
// with it every property's settlement, tick after tick, with no failed run to alert on.
func (db *DB) stepContext(ctx context.Context) (context.Context, context.CancelFunc) {
	timeout := db.settleBatchTimeout
	if timeout <= 0 {
		timeout = settleBatchTimeout
	}
	return context.WithTimeout(ctx, timeout)
}

// settleBatchRecovered is settleBatch on a worker goroutine: a panic there (a bug) fails
// the run, after the batch's transaction rolled back, instead of the process, as it
// would on the scheduler's goroutine, which recovers.
func (db *DB) settleBatchRecovered(ctx context.Context, runID int64, scale int32, cutoff time.Time, ids []int64, skipLocked bool) (skipped []int64, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("store: settlement %d: batch panicked: %v\n%s", runID, r, debug.Stack())
		}
	}()
	return db.settleBatch(ctx, runID, scale, cutoff, ids, skipLocked)
}

// eachBatch hands send the wallets of property to settle, batch at a time in id order.
// When send refuses one (ctx is done), it returns ctx's cause.
//
// It walks lots_property (property, wallet_id, matures_at) in wallet order, a few
// batches' worth of wallets per query (maturedWalletsSQL), skipping from each wallet
// found to the next one: the first entry of a wallet in that index is its earliest lot,
// so one probe per wallet says whether anything of it has matured, where reading every
// matured lot (and its heap row, for visibility) cost a wallet's ten lots ten times as
// much. Each query starts where the last one stopped, and the next queries run while
// batches settle. Only the property's own lots are walked (migration 00032): before,
// lots had no property, and each property's run walked the wallets with matured lots of
// every property.
func (db *DB) eachBatch(ctx context.Context, property string, cutoff time.Time, batch int, send func([]int64) bool) error {
	chunk := batch * 4
	var (
		after int64
		ready []int64 // wallets found, not yet sent
	)
	for {
		found := 0
		err := db.readWithoutJIT(ctx, func(tx *gorm.DB) error {
			found = 0
			rows, err := rawQuery(tx, maturedWalletsSQL, property, cutoff, after, property, cutoff, chunk)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var id int64
				if err := rows.Scan(&id); err != nil {
					return err
				}
				found++
				after = id
				ready = append(ready, id)
			}
			return rows.Err()
		})
		if err != nil {
			return translate(err)
		}
		last := found < chunk
		for len(ready) >= batch || (last && len(ready) > 0) {
			n := min(batch, len(ready))
			if !send(slices.Clone(ready[:n])) {
				return translate(context.Cause(ctx))
			}
			ready = ready[n:]
		}
		if last {
			return nil
		}
	}
}

// maturedWalletsSQL lists, in id order, up to a number of property's wallets after a
// wallet id with a lot matured by a time: arguments property, cutoff, after, property,
// cutoff, limit. It is a loose index scan of lots_property (property, wallet_id,
// matures_at): each step finds the next wallet id past the last one found whose index
// entries include a matured lot, one descent per wallet (the entries of wallets with
// nothing matured are passed over in the index, without reading their heap rows). The
// DISTINCT over every matured lot it replaces read ten index entries and ten heap rows
// for a wallet of ten lots, three times the time of this for BenchmarkSettle's wallets.
const maturedWalletsSQL = `WITH RECURSIVE c (wallet_id, n) AS (
		SELECT (SELECT wallet_id FROM lots WHERE property = ? AND settlement_id IS NULL AND matures_at <= ? AND wallet_id > ?
			ORDER BY wallet_id LIMIT 1), 1
		UNION ALL
		SELECT (SELECT l.wallet_id FROM lots l WHERE l.property = ? AND l.settlement_id IS NULL AND l.matures_at <= ?
			AND l.wallet_id > c.wallet_id ORDER BY l.wallet_id LIMIT 1), c.n + 1
		FROM c WHERE c.wallet_id IS NOT NULL AND c.n < ?)
	SELECT c.wallet_id FROM c WHERE c.wallet_id IS NOT NULL ORDER BY c.wallet_id`

type batchResult struct {
	users, entries int64
	amount         decimal.Decimal
}

// claimed is what a batch claimed of one wallet's matured lots: their sum and how many.
type claimed struct {
	sum decimal.Decimal
	n   int64
}

// settleBatch settles the given wallets in one transaction and adds what it did to the
// run's counters in the same transaction. It is a fixed handful of set-based statements
// whatever the batch's size: lock the wallets, claim their matured lots (one DELETE …
// RETURNING, summed by Postgres), write the journal and its legs, update the wallets,
// count. The wallets' arithmetic is rewards.Wallet.Settle's.
//
// With skipLocked (Postgres only) it leaves out the wallets another transaction has
// locked and returns them, settling nothing of theirs; without, it waits for every lock.
func (db *DB) settleBatch(ctx context.Context, runID int64, scale int32, cutoff time.Time, ids []int64, skipLocked bool) (skipped []int64, err error) {
	// Bounded: a batch stuck behind a lock (a session idle in a transaction holding a
	// wallet) held its run, and every later tick of that replica, for good; cut short it
	// rolls back, the run fails, and the next tick tries again. Well inside the lease,
	// which lapses if a batch outlives it.
	ctx, cancel := db.stepContext(ctx)
	defer cancel()
	skipLocked = skipLocked && db.dialect == Postgres // SQLite has no row locks: its write lock holds them all
	all := ids
	err = db.tx(ctx, func(tx *gorm.DB) error {
		// A transaction the store retries starts over, from every wallet of the batch.
		ids := all
		skipped = nil
		res := batchResult{amount: decimal.Zero}
		if db.dialect == Postgres {
			// Every statement here reaches its rows by key. With batches of thousands of
			// wallets the planner could prefer a sequential scan of all wallets for the
			// wallets' lock or update once the property has a few hundred thousand of
			// them (it did for the update's VALUES list), which costs more than the
			// batch's own work.
			if _, err := rawExec(tx, `SET LOCAL enable_seqscan = off`); err != nil {
				return err
			}
		}
		wallets, err := db.lockWalletsByID(tx, ids, skipLocked)
		if err != nil {
			return err
		}
		if skipLocked && len(wallets) < len(ids) {
			// Only the lots of wallets this transaction holds may be claimed.
			got := make(map[int64]bool, len(wallets))
			locked := make([]int64, 0, len(wallets))
			for _, w := range wallets {
				got[w.ID] = true
				locked = append(locked, w.ID)
			}
			for _, id := range ids {
				if !got[id] {
					skipped = append(skipped, id)
				}
			}
			ids = locked
		}
		now := db.now() // after the locks, like every ledger write (apply.go)
		// Claimed under the lock: lots are only added or settled by transactions holding
		// their wallet's lock, so these are exactly the lots this batch may settle. The
		// savepoint lets the rare wallet that may not settle yet keep its lots.
		if _, err := rawExec(tx, `SAVEPOINT claim`); err != nil {
			return err
		}
		per, err := db.claimLots(tx, ids, cutoff)
		if err != nil {
			return err
		}
		if db.inSettleBatch != nil {
			db.inSettleBatch()
		}
		var settled []*wallet
		refused := 0 // wallets whose lots were claimed but that may not settle yet
		l := db.newLedger(tx)
		ob := db.newOutbox() // credit.settled, committed with the settlement
		ref := fmt.Sprintf("settlement:%d", runID)
		for _, w := range wallets {
			m := per[w.ID]
			if m == nil {
				continue // settled by another run since the batch was chosen
			}
			next, e, ok := w.Wallet.Settle(m.sum, scale)
			if !ok {
				// A pending debit larger than what has matured so far: its lots wait for
				// a run where enough credits have matured to cover it.
				refused++
				continue
			}
			at := w.stamp(now)
			if e != nil {
				l.add(w, *e, posting{ref: ref, at: at})
				res.amount = res.amount.Add(e.UserDelta(rewards.Available))
			}
			w.set(next, at)
			if e != nil {
				if err := ob.creditSettled(w, runID, e.UserDelta(rewards.Available), at); err != nil {
					return err
				}
			}
			settled = append(settled, w)
			res.users++
			res.entries += m.n
		}
		if handled := len(settled) + refused; handled != len(per) {
			return fmt.Errorf("store: settlement %d claimed lots of %d wallets, locked %d of them", runID, len(per), handled)
		}
		if refused > 0 {
			keep := make([]int64, len(settled))
			for i, w := range settled {
				keep[i] = w.ID
			}
			if err := db.reclaimLots(tx, keep, cutoff, per); err != nil {
				return err
			}
		}
		if len(settled) == 0 {
			return nil
		}
		if err := l.flush(); err != nil {
			return err
		}
		if err := ob.flush(tx); err != nil {
			return err
		}
		if err := db.saveWallets(tx, settled); err != nil {
			return err
		}
		return addToRun(tx, runID, res)
	})
	if err != nil {
		return nil, err
	}
	return skipped, nil
}

// addToRun adds a batch's counts to its run's row, as the batch's last statement: the
// row lock it takes is held only while the batch commits, and batches running at once
// add up in the order they commit. The sum is taken here, not in SQL, because SQLite
// keeps money as TEXT.
func addToRun(tx *gorm.DB, runID int64, res batchResult) error {
	cur, err := runCounts(tx, runID, true)
	if err != nil {
		return err
	}
	n, err := rawExec(tx, `UPDATE settlements SET users = ?, entries = ?, amount = ? WHERE id = ?`,
		cur.Users+res.users, cur.Entries+res.entries, rewards.Format(cur.Amount.Add(res.amount)), runID)
	if err == nil && n != 1 {
		err = fmt.Errorf("store: settlement %d: its row is gone", runID)
	}
	return err
}

// claimLots takes the lots of the wallets ids matured by cutoff out of the queue of
// pending credits, in one statement, and returns them per wallet. A settled lot is
// deleted: the settlement's journal row and legs are its record in the ledger, and
// deleting touches no index where marking it settled would write a new row version into
// each. Postgres sums them in SQL (NUMERIC addition is exact), so a batch reads a row per
// wallet, not one per lot; SQLite keeps money as TEXT, so there each lot comes back and
// is summed here. Lots settled before settlement deleted them keep their settlement_id
// and are never claimed again.
func (db *DB) claimLots(tx *gorm.DB, ids []int64, cutoff time.Time) (map[int64]*claimed, error) {
	in, arg := db.idIn("wallet_id", ids)
	q := `DELETE FROM lots WHERE ` + in + ` AND settlement_id IS NULL AND matures_at <= ? RETURNING wallet_id, amount, 1`
	if db.dialect == Postgres {
		q = `WITH c AS (DELETE FROM lots WHERE ` + in + ` AND settlement_id IS NULL AND matures_at <= ? RETURNING wallet_id, amount)
			SELECT wallet_id, sum(amount)::text, count(*) FROM c GROUP BY wallet_id`
	}
	rows, err := rawQuery(tx, q, arg, cutoff)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	per := make(map[int64]*claimed, len(ids))
	for rows.Next() {
		var (
			id, n  int64
			column decimalColumn
		)
		if err := rows.Scan(&id, &column, &n); err != nil {
			return nil, err
		}
		if !column.Valid {
			return nil, fmt.Errorf("store: wallet %d: a lot without an amount", id)
		}
		amount := column.Decimal
		m := per[id]
		if m == nil {
			m = &claimed{sum: decimal.Zero}
			per[id] = m
		}
		m.sum, m.n = m.sum.Add(amount), m.n+n
	}
	return per, rows.Err()
}

// reclaimLots undoes the claim back to the savepoint "claim" and claims again the lots
// of the wallets ids only: the others' lots stay in the queue. The wallets are locked, so
// the second claim must find exactly what the first found for them.
func (db *DB) reclaimLots(tx *gorm.DB, ids []int64, cutoff time.Time, first map[int64]*claimed) error {
	if _, err := rawExec(tx, `ROLLBACK TO SAVEPOINT claim`); err != nil {
		return err
	}
	if len(ids) == 0 {
		return nil
	}
	again, err := db.claimLots(tx, ids, cutoff)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if a, f := again[id], first[id]; a == nil || a.n != f.n || !a.sum.Equal(f.sum) {
			return fmt.Errorf("store: wallet %d: its locked lots changed between two claims", id)
		}
	}
	return nil
}

// idIn is the condition "col is one of ids" with its single argument, whatever the
// number of ids: a Postgres array, or a JSON array SQLite unpacks with json_each. A
// statement of one shape is prepared once, and no batch meets a bind-parameter limit.
func (db *DB) idIn(col string, ids []int64) (string, any) { return idIn(db.gorm, col, ids) }

func idIn(tx *gorm.DB, col string, ids []int64) (string, any) { return arrayIn(tx, col, "bigint", ids) }

// textIn is idIn for a text column.
func textIn(tx *gorm.DB, col string, values []string) (string, any) {
	return arrayIn(tx, col, "text", values)
}

// arrayIn is idIn and textIn: col is one of values, of SQL type sqlType.
func arrayIn[T int64 | string](tx *gorm.DB, col, sqlType string, values []T) (string, any) {
	if tx.Dialector.Name() == string(Postgres) {
		return col + ` = ANY(?::` + sqlType + `[])`, values
	}
	b, _ := json.Marshal(values) // a slice of ints or strings always encodes
	return col + ` IN (SELECT value FROM json_each(?))`, string(b)
}

// lockWalletsByID locks wallets in the order lockWallets uses, (property, user) by byte
// value, so settlement and ingest never wait for each other in a cycle. Postgres sorts
// before it locks (LockRows sits above Sort); SQLite's immediate transaction already
// holds the write lock. With skipLocked, Postgres leaves out (and does not return) the
// wallets another transaction has locked.
func (db *DB) lockWalletsByID(tx *gorm.DB, ids []int64, skipLocked bool) ([]*wallet, error) {
	in, arg := db.idIn("id", ids)
	q := `SELECT ` + walletColumns + ` FROM wallets WHERE ` + in
	if db.dialect == Postgres {
		q += ` ORDER BY property COLLATE "C", user_id COLLATE "C" FOR NO KEY UPDATE`
		if skipLocked {
			q += ` SKIP LOCKED`
		}
	} else {
		q += ` ORDER BY property, user_id`
	}
	rows, err := rawQuery(tx, q, arg)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]*wallet, 0, len(ids))
	for rows.Next() {
		w, err := scanWallet(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

type runRow struct {
	ID         int64
	Property   string
	Status     string
	StartedAt  time.Time
	FinishedAt *time.Time
	Users      int64
	Entries    int64
	Amount     decimal.Decimal
	Error      string
}

// SettlementRuns lists the most recent settlement runs of property, or of every property
// when it is "", newest first.
func (db *DB) SettlementRuns(ctx context.Context, property string, limit int) ([]rewards.SettlementRun, error) {
	return db.SettlementRunsBefore(ctx, property, 0, limit)
}

// SettlementRunsBefore is SettlementRuns of the runs with an id below before (0: any),
// for paging back through them.
func (db *DB) SettlementRunsBefore(ctx context.Context, property string, before int64, limit int) ([]rewards.SettlementRun, error) {
	if limit <= 0 {
		limit = 100
	}
	where, args := "WHERE 1 = 1 ", []any{}
	if property != "" {
		where, args = where+"AND property = ? ", append(args, property) // settlements_property (migration 00019)
	}
	if before > 0 {
		where, args = where+"AND id < ? ", append(args, before)
	}
	var rows []runRow
	err := db.gorm.WithContext(ctx).Raw(`SELECT `+runColumns+` FROM settlements `+where+`ORDER BY id DESC LIMIT ?`,
		append(args, limit)...).Scan(&rows).Error
	if err != nil {
		return nil, translate(err)
	}
	return toRuns(rows), nil
}

const runColumns = `id, property, status, started_at, finished_at, users, entries, amount, error`

func toRuns(rows []runRow) []rewards.SettlementRun {
	out := make([]rewards.SettlementRun, len(rows))
	for i, r := range rows {
		out[i] = rewards.SettlementRun{ID: r.ID, Property: r.Property, Status: r.Status, StartedAt: r.StartedAt.UTC(),
			Users: r.Users, Entries: r.Entries, Amount: r.Amount, Error: r.Error}
		if r.FinishedAt != nil {
			out[i].FinishedAt = r.FinishedAt.UTC()
		}
	}
	return out
}

// LastSettlementRuns returns the newest run of each of properties that has one, in
// one round trip on Postgres (the console's overview asked once per property: a
// thousand queries a page view for a thousand properties).
func (db *DB) LastSettlementRuns(ctx context.Context, properties []string) ([]rewards.SettlementRun, error) {
	if db.dialect != Postgres { // in process: a query per property costs next to nothing
		var out []rewards.SettlementRun
		for _, p := range properties {
			runs, err := db.SettlementRuns(ctx, p, 1)
			if err != nil {
				return nil, err
			}
			out = append(out, runs...)
		}
		return out, nil
	}
	rows, err := rawQuery(db.gorm.WithContext(ctx), `SELECT r.* FROM unnest(?::text[]) AS p (property)
		CROSS JOIN LATERAL (SELECT `+runColumns+` FROM settlements s WHERE s.property = p.property ORDER BY s.id DESC LIMIT 1) r`,
		properties)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	var runs []runRow
	for rows.Next() {
		var r runRow
		if err := rows.Scan(&r.ID, &r.Property, &r.Status, &r.StartedAt, &r.FinishedAt, &r.Users, &r.Entries, &r.Amount, &r.Error); err != nil {
			return nil, translate(err)
		}
		runs = append(runs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, translate(err)
	}
	return toRuns(runs), nil
}
