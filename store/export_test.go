package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/shopspring/decimal"
	"gorm.io/gorm"

	"tally/rewards"
)

// Test seams for package store_test. Nothing here is reachable from production code.

// SettleOptions tune SettleWith.
type SettleOptions struct {
	Batch      int       // wallets per transaction
	Workers    int       // batches at once on Postgres; 0 is one at a time, in wallet order
	NoLock     bool      // skip the lease, so concurrent runs really race
	AfterBatch func(int) // called after each committed batch
	Actor      string    // who asked for the run by hand
}

// SetInSettleBatch makes fn run in every following settlement batch, after the batch
// claimed its lots; nil stops it. Set it while no settlement runs.
func SetInSettleBatch(db *DB, fn func()) { db.inSettleBatch = fn }

// SetClaimReads makes every following delivery claim call fn, as its transaction ends,
// with the rows of webhook_deliveries the transaction read (Postgres: rows read by
// sequential scans and fetched through indexes, pg_stat_xact_user_tables); nil stops it.
func SetClaimReads(db *DB, fn func(int64)) {
	if fn == nil {
		db.endOfClaim = nil
		return
	}
	db.endOfClaim = func(tx *gorm.DB) {
		var n int64
		if err := query(tx, &n, `SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) FROM pg_stat_xact_user_tables
			WHERE relname = 'webhook_deliveries'`); err != nil {
			n = -1
		}
		fn(n)
	}
}

// SetBeforeAttemptBatch makes fn run before each transaction that records delivery
// attempts on SQLite, with how many it records. Set it before any attempt is recorded.
func SetBeforeAttemptBatch(db *DB, fn func(n int)) { db.attempts.beforeBatch = fn }

// SettleWith is Settle with test options.
func (db *DB) SettleWith(ctx context.Context, property string, scale int32, o SettleOptions) (rewards.SettlementRun, error) {
	return db.settle(ctx, property, scale, settleOptions{batch: o.Batch, workers: o.Workers, lock: !o.NoLock, afterBatch: o.AfterBatch, actor: o.Actor})
}

// ExecRaw runs a statement outside the store's methods: to corrupt data on purpose, or
// to leave behind what a killed process would.
func (db *DB) ExecRaw(ctx context.Context, q string, args ...any) error {
	return db.gorm.WithContext(ctx).Exec(q, args...).Error
}

// Tamper runs q on table with its append-only triggers out of the way, as someone with
// the database's owner rights could, to test what `tally verify` catches. The triggers
// are back when it returns.
func (db *DB) Tamper(ctx context.Context, table, q string, args ...any) error {
	return db.tx(ctx, func(tx *gorm.DB) error {
		if db.dialect == Postgres {
			for _, s := range []string{`ALTER TABLE ` + table + ` DISABLE TRIGGER USER`, q, `ALTER TABLE ` + table + ` ENABLE TRIGGER USER`} {
				a := args
				if s != q {
					a = nil
				}
				if _, err := rawExec(tx, s, a...); err != nil {
					return err
				}
			}
			return nil
		}
		var triggers []struct{ Name, SQL string }
		if err := tx.Raw(`SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?`, table).Scan(&triggers).Error; err != nil {
			return err
		}
		for _, t := range triggers {
			if _, err := rawExec(tx, `DROP TRIGGER `+t.Name); err != nil {
				return err
			}
		}
		if _, err := rawExec(tx, q, args...); err != nil {
			return err
		}
		for _, t := range triggers {
			if _, err := rawExec(tx, t.SQL); err != nil {
				return err
			}
		}
		return nil
	})
}

// OnRetry tells fn of every transaction the store tries again (a deadlock, a
// serialization failure). Set it before the DB is used concurrently.
func (db *DB) OnRetry(fn func(error)) { db.retried = fn }

// HoldAdvisoryLock runs fn while a transaction holds the advisory lock key (exclusive).
func (db *DB) HoldAdvisoryLock(ctx context.Context, key int64, fn func()) error {
	return db.holdAfter(ctx, fn, `SELECT pg_advisory_xact_lock(?)`, key)
}

// HoldWriteLock runs fn inside a write transaction that has written (on SQLite it holds
// the database's write lock until fn returns), then rolls it back.
func (db *DB) HoldWriteLock(ctx context.Context, fn func()) error {
	return db.holdAfter(ctx, fn, `UPDATE property_units SET scale = scale WHERE property = ''`)
}

// HoldTableRead runs fn inside a transaction that has read table (holding its share
// lock, as a long report or `tally verify` does), then rolls it back.
func (db *DB) HoldTableRead(ctx context.Context, table string, fn func()) error {
	return db.holdAfter(ctx, fn, `SELECT count(*) FROM `+table)
}

// HoldLeaseRow runs fn while another transaction has inserted the lease name's row and
// not committed (a session left in a transaction), then rolls it back.
func (db *DB) HoldLeaseRow(ctx context.Context, name string, fn func()) error {
	return db.holdAfter(ctx, fn, `INSERT INTO leases (name, holder, expires_at) VALUES (?, 'stuck', ?)`, name, db.now())
}

// HoldEndpointRow runs fn while another transaction holds the lock of the webhook
// endpoint's row (it has written it and not committed), then rolls it back.
func (db *DB) HoldEndpointRow(ctx context.Context, property, url string, fn func()) error {
	return db.holdAfter(ctx, fn, `UPDATE webhook_endpoints SET url = url WHERE property = ? AND url = ?`, property, url)
}

// holdAfter runs fn inside a transaction that has run q, then rolls it back.
func (db *DB) holdAfter(ctx context.Context, fn func(), q string, args ...any) error {
	err := db.tx(ctx, func(tx *gorm.DB) error {
		if _, err := rawExec(tx, q, args...); err != nil {
			return err
		}
		fn()
		return errHeld
	})
	if errors.Is(err, errHeld) {
		return nil
	}
	return err
}

var errHeld = errors.New("held, rolled back")

// ParkedBehind is how long after its user's first pending delivery one behind it is due.
const ParkedBehind = parkedBehind

// LeaseTTL is how long a settlement lease lasts.
const LeaseTTL = leaseTTL

// CreditSlowly credits amount to the user's available through the real write path
// (lockWallets, rewards, postOne, saveWallets), but after taking the wallet lock (and, on
// Postgres, a transaction id) it signals locked and waits for release before it commits:
// a writer that commits after writers that started later.
func (db *DB) CreditSlowly(ctx context.Context, property, user string, amount decimal.Decimal, locked chan<- struct{}, release <-chan struct{}) error {
	return db.tx(ctx, func(tx *gorm.DB) error {
		ws, err := lockWallets(tx, []walletKey{{property, user}}, db.now())
		if err != nil {
			return err
		}
		if db.dialect == Postgres {
			if err := tx.Exec(`SELECT pg_current_xact_id()`).Error; err != nil {
				return err
			}
		}
		w := ws[walletKey{property, user}]
		at := w.stamp(db.now())
		close(locked)
		<-release
		next, e, err := w.Wallet.Adjust(amount, rewards.Available)
		if err != nil {
			return err
		}
		if err := db.postOne(tx, w, e, posting{ref: fmt.Sprintf("slow:%s", user), at: at}); err != nil {
			return err
		}
		w.set(next, at)
		return db.saveWallets(tx, []*wallet{w})
	})
}

// FailAfterApply makes every following Apply fail after its effects and marks are
// written, just before commit, until called with nil.
func FailAfterApply(db *DB, err error) {
	if err == nil {
		db.afterApply = nil
		return
	}
	db.afterApply = func(*gorm.DB) error { return err }
}

// KillAfterApply makes the next Apply's connection die just before commit, as when the
// process or the network goes: on Postgres the server terminates the backend; on
// SQLite, whose connection is in-process, the transaction fails instead. It calls
// killed (if not nil) once it has struck, and strikes once.
func KillAfterApply(db *DB, killed func()) {
	db.afterApply = func(tx *gorm.DB) error {
		db.afterApply = nil
		defer func() {
			if killed != nil {
				killed()
			}
		}()
		if db.dialect == Postgres {
			err := tx.Exec(`SELECT pg_terminate_backend(pg_backend_pid())`).Error
			if err == nil {
				return fmt.Errorf("store test: the backend survived pg_terminate_backend")
			}
			return err
		}
		return fmt.Errorf("store test: killed before commit")
	}
}

// FailCommits makes every transaction of tx fail as a commit whose answer never came,
// after its work, until called with nil.
func FailCommits(db *DB, err error) {
	if err == nil {
		db.failCommit = nil
		return
	}
	db.failCommit = func() error { return err }
}

// BeforeMigrateUp makes fn run in db's Migrate between its schema check and goose's Up.
func BeforeMigrateUp(db *DB, fn func()) { db.beforeMigrateUp = fn }

// BeforeCommit makes fn run in every transaction of db just before it commits, until
// called with nil.
func BeforeCommit(db *DB, fn func()) {
	if fn == nil {
		db.failCommit = nil
		return
	}
	db.failCommit = func() error { fn(); return nil }
}

// BeforeReportWaits makes fn run each time a payout report starts waiting for the write
// transactions in flight.
func BeforeReportWaits(db *DB, fn func()) { db.beforeWritersWait = fn }

// WhileReportWaits sets a function a report on Postgres calls each time it finds a write
// transaction in flight that it waits for.
func WhileReportWaits(db *DB, fn func()) { db.writerInFlight = fn }

// AfterReceiptStamp makes fn run in Record once the batch's receipt time is taken,
// before the batch is written.
func AfterReceiptStamp(db *DB, fn func()) { db.afterReceiptStamp = fn }

// DuplicatePlan is the EXPLAIN of the statement Record uses to look up the events of
// batch that were recorded before.
func DuplicatePlan(ctx context.Context, db *DB, batch []rewards.Inbound) (string, error) {
	rows := make([][]any, len(batch))
	for i, in := range batch {
		k := keyOf(in)
		rows[i] = []any{k.property, k.source, k.key}
	}
	sql, args := findKeysSQL(rows)
	return explain(ctx, db, sql, args)
}

// TransactionsPlan is the EXPLAIN of the statement Transactions runs.
func TransactionsPlan(ctx context.Context, db *DB, property, user string, limit int, before int64) (string, error) {
	q, args := transactionsSQL(property, user, limit, before)
	return explain(ctx, db, q, args)
}

// BalancePlan is the EXPLAIN of the statement a balance reader runs for one wallet.
func BalancePlan(ctx context.Context, db *DB, property, user string) (string, error) {
	return explain(ctx, db, unnumbered(balanceOneSQL), []any{property, user})
}

// MaturedWalletsPlan is the EXPLAIN of the query settlement finds wallets with matured
// lots with.
func MaturedWalletsPlan(ctx context.Context, db *DB, property string, cutoff time.Time, after int64, limit int) (string, error) {
	return explain(ctx, db, maturedWalletsSQL, []any{property, cutoff, after, property, cutoff, limit})
}

// SettlementDuePlan is the EXPLAIN of the check a scheduled run makes before its lease.
func SettlementDuePlan(ctx context.Context, db *DB, property string, cutoff time.Time) (string, error) {
	return explain(ctx, db, settlementDueSQL, []any{property, cutoff, property, rewards.RunRunning})
}

// MaturedWalletsLotsRead runs the query settlement finds wallets with matured lots with,
// under EXPLAIN ANALYZE, and returns how many lots index entries its scans of lots
// returned in all (rows × loops of each scan node on lots), with the plan.
func MaturedWalletsLotsRead(ctx context.Context, db *DB, property string, cutoff time.Time, after int64, limit int) (int64, string, error) {
	var lines []string
	if err := query(db.gorm.WithContext(ctx), &lines, `EXPLAIN ANALYZE `+maturedWalletsSQL, property, cutoff, after, property, cutoff, limit); err != nil {
		return 0, "", err
	}
	actual := regexp.MustCompile(`actual time=[0-9.]+\.\.[0-9.]+ rows=([0-9]+) loops=([0-9]+)`)
	var n int64
	for _, l := range lines {
		if m := actual.FindStringSubmatch(l); m != nil && strings.Contains(l, " on lots") {
			rows, _ := strconv.ParseInt(m[1], 10, 64)
			loops, _ := strconv.ParseInt(m[2], 10, 64)
			n += rows * loops
		}
	}
	return n, strings.Join(lines, "\n"), nil
}

// unnumbered turns a statement's $1, $2, … placeholders (pgx's) into ? (gorm's).
func unnumbered(q string) string { return regexp.MustCompile(`\$[0-9]+`).ReplaceAllString(q, "?") }

// AllocIDsPlan is the plan of the statement that reserves n ids of table.
func AllocIDsPlan(ctx context.Context, db *DB, table string, n int) (string, error) {
	return explain(ctx, db, allocIDsSQL, []any{table, n})
}

func explain(ctx context.Context, db *DB, q string, args []any) (string, error) {
	var lines []string
	if err := query(db.gorm.WithContext(ctx), &lines, `EXPLAIN `+q, args...); err != nil {
		return "", err
	}
	return strings.Join(lines, "\n"), nil
}

// MigrateTo applies the migrations up to and including version, and no further.
func MigrateTo(ctx context.Context, db *DB, version int64) error {
	p, err := db.goose(db.sql)
	if err != nil {
		return err
	}
	_, err = p.UpTo(ctx, version)
	return err
}

// QueryInts runs a query that returns a column of integers.
func QueryInts(ctx context.Context, db *DB, q string, args ...any) ([]int64, error) {
	var ns []int64
	err := query(db.gorm.WithContext(ctx), &ns, q, args...)
	return ns, err
}

// QueryInt runs a query that returns one integer.
func QueryInt(ctx context.Context, db *DB, q string, args ...any) (int64, error) {
	var n int64
	err := query(db.gorm.WithContext(ctx), &n, q, args...)
	return n, err
}

// SetFloorRounds makes the claim floor's next round run `every` from now and then at
// most every `every`, and look below the floor every `check` (0: every round).
func SetFloorRounds(db *DB, every, check time.Duration) {
	db.floor.mu.Lock()
	defer db.floor.mu.Unlock()
	db.floor.every, db.floor.checkEvery = every, check
	db.floor.roundAt, db.floor.checkedAt = time.Now(), time.Now()
}

// ClaimFloor is where the applier's claims start now, and how many recorded events the
// full checks found below it (a bug if ever more than 0).
func ClaimFloor(db *DB) (floor, misses int64) {
	db.floor.mu.Lock()
	defer db.floor.mu.Unlock()
	return db.floor.floor, db.floor.misses
}

// ClaimBuffers runs the applier's claim of up to limit recorded events from floor under
// EXPLAIN (ANALYZE, BUFFERS), as Apply plans it, and returns the shared buffers it
// touched. The transaction rolls back, so nothing is claimed.
func ClaimBuffers(ctx context.Context, db *DB, floor int64, limit int) (int64, error) {
	q, args := db.claimSQL(rewards.Claim{Status: rewards.StatusRecorded, Limit: limit}, floor)
	var buffers int64
	errRollback := errors.New("rollback")
	err := db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if _, err := rawExec(tx, `SET LOCAL enable_seqscan = off`); err != nil {
			return err
		}
		var plan string
		if err := query(tx, &plan, `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) `+q, args...); err != nil {
			return err
		}
		var out []struct {
			Plan struct {
				Hit  int64 `json:"Shared Hit Blocks"`
				Read int64 `json:"Shared Read Blocks"`
			}
		}
		if err := json.Unmarshal([]byte(plan), &out); err != nil || len(out) != 1 {
			return fmt.Errorf("store test: EXPLAIN %q: %v", plan, err)
		}
		buffers = out[0].Plan.Hit + out[0].Plan.Read
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		return 0, err
	}
	return buffers, nil
}

// RecordSlowly inserts one inbox row as the receivers do (its id from the column's
// default), sends the id on inserted and waits for release before it commits: an ingest
// transaction that commits after others that took later ids.
func RecordSlowly(ctx context.Context, db *DB, in rewards.Inbound, inserted chan<- int64, release <-chan struct{}) error {
	return db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var id int64
		if err := query(tx, &id, `INSERT INTO inbox (property, source, dedupe_key, user_id, kind, event_type, raw_body, event, received_at, status)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			in.Property, string(in.Event.Source), in.Event.DedupeKey, in.Event.User, string(in.Event.Kind), in.Event.Type, []byte("{}"),
			mustJSON(in.Event), db.now(), rewards.StatusRecorded); err != nil {
			return err
		}
		inserted <- id
		<-release
		return nil
	})
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// SetFloorServer makes the claim floor's rounds believe the floor was proven on a server
// whose postmaster started at started, as after a failover or a restore.
func SetFloorServer(db *DB, started time.Time) {
	db.floor.mu.Lock()
	defer db.floor.mu.Unlock()
	db.floor.server = started.UnixMicro()
}

// FloorServer is when the claim floor's last round read that the server started.
func FloorServer(db *DB) time.Time {
	db.floor.mu.Lock()
	defer db.floor.mu.Unlock()
	return time.UnixMicro(db.floor.server)
}

// SetClaimFloor puts the applier's claim floor at floor, as a wrong round would.
func SetClaimFloor(db *DB, floor int64) {
	db.floor.mu.Lock()
	defer db.floor.mu.Unlock()
	db.floor.floor = floor
}

// FloorRoundAfterID runs a claim floor round in a transaction that already took a
// transaction id, which the round must refuse.
func FloorRoundAfterID(ctx context.Context, db *DB) error {
	return db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`SELECT pg_current_xact_id()`).Error; err != nil {
			return err
		}
		SetFloorRounds(db, 0, time.Hour)
		_, err := db.advanceFloor(tx)
		return err
	})
}

// FloorRoundTakesID runs a claim floor round in a transaction of its own and says whether
// that transaction holds a transaction id after it.
func FloorRoundTakesID(ctx context.Context, db *DB) (bool, error) {
	var took bool
	err := db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if _, err := db.advanceFloor(tx); err != nil {
			return err
		}
		return query(tx, &took, `SELECT pg_current_xact_id_if_assigned() IS NOT NULL`)
	})
	return took, err
}

// HoldWallet runs fn inside a transaction that has written the user's wallet row (every
// other writer of that wallet, and on SQLite every writer, waits for it), then rolls back.
func (db *DB) HoldWallet(ctx context.Context, property, user string, fn func()) error {
	return db.holdAfter(ctx, fn, `UPDATE wallets SET updated_at = updated_at WHERE property = ? AND user_id = ?`, property, user)
}

// PoolWaits is how many times a statement waited for a free connection of the pool.
func (db *DB) PoolWaits() int64 { return db.sql.Stats().WaitCount }

// HoldAfterApply makes the next Apply, its effects written, signal held and wait for
// release before it commits.
func HoldAfterApply(db *DB, held chan<- struct{}, release <-chan struct{}) {
	db.afterApply = func(*gorm.DB) error {
		db.afterApply = nil
		held <- struct{}{}
		<-release
		return nil
	}
}

// SetSettleBatchTimeout bounds each settlement batch by d instead of the default.
func SetSettleBatchTimeout(db *DB, d time.Duration) { db.settleBatchTimeout = d }

// WithAnyReplicaDatabase lets o.ReadURL name another database of the primary's cluster.
func WithAnyReplicaDatabase(o Options) Options {
	o.anyReplicaDatabase = true
	return o
}

// BeforeQuery runs fn once, before the first statement whose SQL contains substr is
// sent: a test commits something between two reads of one operation.
func BeforeQuery(db *DB, substr string, fn func()) {
	var once atomic.Bool
	err := db.gorm.Callback().Row().Before("gorm:row").Register("test:before-query:"+substr, func(tx *gorm.DB) {
		if strings.Contains(tx.Statement.SQL.String(), substr) && once.CompareAndSwap(false, true) {
			fn()
		}
	})
	if err != nil {
		panic(err)
	}
}

// DueDeliveriesRun runs the claim's query of due deliveries (dueDeliveriesSQL) of the
// (property, url) endpoints under EXPLAIN ANALYZE and returns the index and heap entries
// its scans of webhook_deliveries read in all (returned or removed by a filter, times
// loops), with the plan.
func DueDeliveriesRun(ctx context.Context, db *DB, now time.Time, limit int, endpoints [][2]string) (int64, string, error) {
	in, inArgs := claimedEndpoints(endpoints)
	args := append(append([]any{now, now}, inArgs...), limit, now, now)
	return outboxRowsRead(ctx, db, claimPlan, dueDeliveriesSQL(db.dialect, ` AND `+in), args) // as a claim reads
}

// DueEndpointsRun is DueDeliveriesRun of DueEndpoints' statement.
func DueEndpointsRun(ctx context.Context, db *DB, now time.Time, endpoints [][2]string) (int64, string, error) {
	q, args := db.dueEndpointsSQL(endpoints, now)
	return outboxRowsRead(ctx, db, byKey, q, args) // as DueEndpoints reads
}

// outboxRowsRead runs q under EXPLAIN ANALYZE (Postgres), in a read with the planner
// settings (readWith) unless they are "", and returns the entries its scans of
// webhook_deliveries read, with the plan.
func outboxRowsRead(ctx context.Context, db *DB, settings, q string, args []any) (int64, string, error) {
	var lines []string
	explain := func(tx *gorm.DB) error {
		lines = nil
		return query(tx, &lines, `EXPLAIN ANALYZE `+q, args...)
	}
	var err error
	switch {
	case settings == "":
		err = explain(db.gorm.WithContext(ctx))
	case strings.Contains(q, "FOR UPDATE"): // a claim's: in a transaction that may lock
		err = db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			if _, err := rawExec(tx, settings); err != nil {
				return err
			}
			return explain(tx)
		})
	default:
		err = db.readWith(ctx, settings, explain)
	}
	if err != nil {
		return 0, "", err
	}
	actual := regexp.MustCompile(`actual time=[0-9.]+\.\.[0-9.]+ rows=([0-9]+) loops=([0-9]+)`)
	removed := regexp.MustCompile(`Rows Removed by (?:Filter|Index Recheck): ([0-9]+)`)
	var n, loops int64
	scan := false
	for _, l := range lines {
		if m := actual.FindStringSubmatch(l); m != nil {
			scan = strings.Contains(l, " on webhook_deliveries")
			if scan {
				rows, _ := strconv.ParseInt(m[1], 10, 64)
				loops, _ = strconv.ParseInt(m[2], 10, 64)
				n += rows * loops
			}
		} else if m := removed.FindStringSubmatch(l); m != nil && scan {
			r, _ := strconv.ParseInt(m[1], 10, 64)
			n += r * loops
		}
	}
	return n, strings.Join(lines, "\n"), nil
}

// WriteDeliveries writes a balance.updated delivery for each of users of property, in
// one transaction, through the outbox the applier writes with.
func WriteDeliveries(ctx context.Context, db *DB, property string, users []string) error {
	return db.tx(ctx, func(tx *gorm.DB) error {
		ob := db.newOutbox()
		for _, u := range users {
			if err := ob.add(property, u, rewards.WebhookBalanceUpdated, db.now(), map[string]string{"user": u}); err != nil {
				return err
			}
		}
		return ob.flush(tx)
	})
}

// HoldWriteTurn runs fn inside a write transaction of the store's own (tx), holding this
// process's turn at SQLite's write lock until fn returns.
func (db *DB) HoldWriteTurn(ctx context.Context, fn func()) error {
	return db.tx(ctx, func(*gorm.DB) error {
		fn()
		return nil
	})
}

// WriteTurnWaiters is how many write transactions wait for their turn (SQLite).
func WriteTurnWaiters(db *DB) int64 { return db.writeWaiters.Load() }

// AfterParkedRead makes fn run in each UnparkHeads between its read of the parked first
// deliveries and its update of them (nil: nothing).
func AfterParkedRead(db *DB, fn func()) { db.afterParkedRead = fn }

// Isolations reports the isolation level of a transaction of the store's writers and of
// one of its read-only transactions (Postgres).
func (db *DB) Isolations(ctx context.Context) (writer, reader string, err error) {
	err = db.tx(ctx, func(tx *gorm.DB) error {
		return tx.Raw(`SHOW transaction_isolation`).Row().Scan(&writer)
	})
	if err == nil {
		err = db.readWith(ctx, `SELECT 1`, func(tx *gorm.DB) error {
			return tx.Raw(`SHOW transaction_isolation`).Row().Scan(&reader)
		})
	}
	return writer, reader, err
}

// AcquireLease is acquireLease, for tests of the lease itself.
func (db *DB) AcquireLease(ctx context.Context, name, holder string) (bool, error) {
	return db.acquireLease(ctx, name, holder)
}
