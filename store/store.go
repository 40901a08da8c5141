// Package store is Tally's persistence: gorm over Postgres or SQLite, the embedded goose
// migrations, and one method per business operation, each a single transaction.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"tally/migrations"
	"tally/rewards"
)

// Dialect is the SQL dialect behind a DB.
type Dialect string

// The two supported databases.
const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// DB is an open database with its migrations and clock.
type DB struct {
	gorm    *gorm.DB
	sql     *sql.DB
	dialect Dialect
	log     *slog.Logger // Options.Log
	// path is a SQLite database's file.
	path string
	// probe is a one-connection pool of Ready's own: queued behind the writers in sql
	// (a hot wallet on Postgres, the write lock on SQLite), /readyz said "database
	// unreachable" while the database was only busy, taking every replica out of the
	// load balancer at once. migrated is set once Ready found no migration pending.
	probe    *sql.DB
	migrated atomic.Bool
	now      func() time.Time
	// reads is the pool of the publisher's hot reads on Postgres, and balances the batched
	// balance reads on it (reads.go); both nil on SQLite.
	reads *pgxpool.Pool
	// replicaProbe is Ready's one connection to the read_url replica, when there is one:
	// a probe through reads queued behind publisher reads and called a busy database
	// unreachable (every replica's /readyz 503 at once).
	replicaProbe *pgxpool.Pool
	balances     *balanceReader
	pages        chan struct{} // page reads holding a read connection (pageSlot)
	// floor is where the applier's claims start on Postgres (floor.go).
	floor claimFloor
	// webhooks is Options.Webhooks (outbox.go).
	webhooks func(property, eventType string) []string
	// afterApply, set only by tests (export_test.go), runs inside Apply's transaction
	// after every effect and mark is written and before commit, to prove that a failure
	// or a killed connection there leaves nothing behind.
	afterApply func(tx *gorm.DB) error
	// failCommit, set only by tests, makes tx fail as a commit whose answer never came.
	failCommit func() error
	// retried, set only by tests, is told of each transaction tx tries again (a deadlock,
	// a serialization failure).
	retried func(error)
	// beforeMigrateUp, set only by tests, runs in Migrate between its schema check and
	// goose's Up (where a newer replica's migration may commit).
	beforeMigrateUp func()
	// beforeTrueUpCommit, set only by tests, runs at the end of TrueUp's transaction.
	beforeTrueUpCommit func(tx *gorm.DB) error
	// beforeWritersWait, set only by tests, runs when a report starts waiting for the
	// writers in flight (report.go).
	beforeWritersWait func()
	// writerInFlight, set only by tests, runs each time a report on Postgres finds a
	// writer in flight that it has to wait for (report.go).
	writerInFlight func()
	// afterReceiptStamp, set only by tests, runs in Record once its batch's receipt time
	// is taken, before the batch is written (ingest.go).
	afterReceiptStamp func()
	// inSettleBatch, set only by tests, runs in each settlement batch's transaction
	// after its lots are claimed (settle.go).
	inSettleBatch func()
	// settleBatchTimeout, set only by tests, replaces settleBatchTimeout.
	settleBatchTimeout time.Duration
	// attempts records delivery attempts on SQLite, several in a transaction (nil on
	// Postgres).
	attempts *attemptRecorder
	// writeTurn, on SQLite (nil on Postgres), is this process's queue for the one write
	// lock: a write transaction (tx) holds its one place, and the others wait for it in
	// the order they came. Without it they waited in SQLite's busy handler, each holding
	// a pooled connection and sleeping up to 100 ms between tries, and whoever tried at
	// the right moment won: the webhook recorder, starting its next transaction the
	// moment it committed its last, kept postbacks waiting past their deadline after
	// every settlement (503s; review helper 212), and balance reads waited for a
	// connection the waiting writers held.
	writeTurn chan struct{}
	// writeWaiters counts the transactions waiting for a turn (tests read it).
	writeWaiters atomic.Int64
	// endOfClaim, set only by tests, runs at the end of each delivery claim's
	// transaction (webhook.go).
	endOfClaim func(tx *gorm.DB)
	// afterParkedRead, set only by tests, runs between UnparkHeads' read and its update.
	afterParkedRead func()
}

// Options tune Open. The zero value is fine for production.
type Options struct {
	// Now is the clock; nil means the wall clock. Times are stored in UTC at microsecond
	// precision (what Postgres keeps), so every time the store writes comes through here.
	Now func() time.Time
	// MaxOpenConns bounds the pool; 0 picks a default per dialect.
	MaxOpenConns int
	// ReadURL, Postgres only, is a replica the publisher's hot reads (balance,
	// transactions, balance feed, tournaments) go to; "" reads them from the database
	// itself.
	ReadURL string
	// Webhooks names the endpoints (URLs) of a property subscribed to a webhook event
	// type (rewards.Webhook*); nil subscribes nothing. It is called for every change that
	// could be announced, on the write path, so it must be a lookup in memory.
	Webhooks func(property, eventType string) []string
	// Log receives the store's own log lines (the applier's claim floor starting over
	// after a failover, say); nil means slog.Default(). Serve passes its JSON logger:
	// through the default, these lines came out as plain text among its JSON lines.
	Log *slog.Logger
	// Existing refuses a SQLite file that does not exist yet instead of creating it
	// (commands other than serve and migrate: an empty new ledger, opened from another
	// working directory, would read as "no data").
	Existing bool
	// anyReplicaDatabase lets ReadURL name another database of the primary's cluster
	// (tests: a second database stands for the replica, so where a read went shows).
	anyReplicaDatabase bool
}

// Open connects to a database URL: sqlite://path/to/file.db (relative to the working
// directory; sqlite:///abs/path.db for an absolute path) or postgres://…
// It does not migrate; call Migrate.
func Open(ctx context.Context, rawURL string, opt Options) (*DB, error) {
	dialect, dsn, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	now := opt.Now
	if now == nil {
		now = time.Now
	}
	clock := func() time.Time { return now().UTC().Truncate(time.Microsecond) }
	cfg := &gorm.Config{
		TranslateError:         true,
		SkipDefaultTransaction: true,
		// Open pings with ctx right after (Ping): gorm's own ping has no deadline, and a
		// Postgres address that accepts connections and never answers (a black-holing
		// firewall) held `tally check` and every command for good.
		DisableAutomaticPing: true,
		NowFunc:              clock,
		Logger:               logger.Discard,
	}
	var dial, probeDial gorm.Dialector
	maxConns := opt.MaxOpenConns
	switch dialect {
	case SQLite:
		if opt.Existing {
			if _, err := os.Stat(dsn); errors.Is(err, fs.ErrNotExist) {
				abs, _ := filepath.Abs(dsn)
				relative := ""
				if !filepath.IsAbs(dsn) {
					relative = " (a sqlite:// path is relative to the working directory)"
				}
				return nil, fmt.Errorf("store: no database at %s%s: check database.url, or create it with `tally migrate`: %w",
					abs, relative, ErrNoDatabase)
			}
		}
		if dir := filepath.Dir(dsn); dir != "." {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, fmt.Errorf("store: create %s: %w", dir, err)
			}
		}
		// WAL lets readers run beside the writer; immediate transactions take the write
		// lock at BEGIN, so two writers queue on the busy timeout instead of failing with
		// "database is locked" when one upgrades a read lock.
		q := url.Values{}
		q.Add("_pragma", "busy_timeout(10000)")
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(FULL)")
		q.Add("_pragma", "foreign_keys(1)")
		q.Set("_txlock", "immediate")
		dial = sqlite.Open("file:" + sqliteURIPath(dsn) + "?" + q.Encode())
		probeDial = sqlite.Open("file:" + sqliteURIPath(dsn) + "?" + q.Encode())
		if maxConns == 0 {
			maxConns = 8
		}
	case Postgres:
		dial, probeDial = postgres.Open(dsn), postgres.Open(dsn)
		if maxConns == 0 {
			// 32 connections to the primary per process in all: Ready's probe and the
			// read pool's (reads.go) come out of them, the latter unless it reads from
			// a replica.
			maxConns = 31
			if opt.ReadURL == "" {
				maxConns -= readPoolSize
			}
		}
	}
	g, err := gorm.Open(dial, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", dialect, errors.Join(rewards.ErrUnavailable, err))
	}
	sqlDB, err := g.DB()
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	sqlDB.SetMaxOpenConns(maxConns)
	sqlDB.SetMaxIdleConns(maxConns)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	probe, err := openProbe(probeDial, cfg)
	if err != nil {
		_ = sqlDB.Close()
		return nil, err
	}
	log := opt.Log
	if log == nil {
		log = slog.Default()
	}
	db := &DB{gorm: g, sql: sqlDB, probe: probe, dialect: dialect, now: clock, webhooks: opt.Webhooks, log: log,
		floor: claimFloor{every: floorEvery, checkEvery: floorCheckEvery, log: log}}
	if dialect == SQLite {
		db.path = dsn
	}
	if err := db.Ping(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	if opt.ReadURL != "" && dialect != Postgres {
		_ = db.Close()
		return nil, fmt.Errorf("store: a read replica needs Postgres, not %s", dialect)
	}
	if dialect == Postgres {
		readDSN := dsn
		if opt.ReadURL != "" {
			readDSN = opt.ReadURL
		}
		if db.reads, err = openReadPool(ctx, readDSN); err != nil {
			_ = db.Close()
			return nil, err
		}
		if opt.ReadURL != "" {
			if db.replicaProbe, err = openReplicaProbe(ctx, opt.ReadURL); err != nil {
				_ = db.Close()
				return nil, err
			}
		}
		db.balances, db.pages = newBalanceReader(db.reads), make(chan struct{}, pageReaders)
		// A read_url that does not answer, or is not the primary's replica, fails at
		// start, not on every balance later.
		if opt.ReadURL != "" {
			if err := db.ReadReplica(ctx); err != nil {
				_ = db.Close()
				return nil, err
			}
			if err := db.sameDatabase(ctx, opt.anyReplicaDatabase); err != nil {
				_ = db.Close()
				return nil, err
			}
		}
	} else {
		db.writeTurn = make(chan struct{}, 1)
		db.attempts = newAttemptRecorder(db)
	}
	return db, nil
}

// takeWriteTurn waits for this process's turn at SQLite's write lock (writeTurn), in
// the order asked, and returns its release; on Postgres it returns at once. It fails
// when ctx ends first.
func (db *DB) takeWriteTurn(ctx context.Context) (func(), error) {
	if db.writeTurn == nil {
		return func() {}, nil
	}
	db.writeWaiters.Add(1)
	defer db.writeWaiters.Add(-1)
	select {
	case db.writeTurn <- struct{}{}:
		return func() { <-db.writeTurn }, nil
	case <-ctx.Done():
		return nil, translate(ctx.Err())
	}
}

// sameDatabase checks that the read replica holds the primary's database: the same
// cluster (a physical standby shares its system identifier) and the same database name.
// A read_url naming another database, or a copy restored elsewhere, would answer every
// balance from another ledger (zero, or days old) without an error.
func (db *DB) sameDatabase(ctx context.Context, anyDatabase bool) error {
	const q = `SELECT (SELECT system_identifier FROM pg_control_system()), current_database()`
	var primaryID, replicaID int64
	var primaryDB, replicaDB string
	identify := func(which string, err error) error {
		if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) && pe.Code == "42501" {
			return fmt.Errorf("store: database.read_url: cannot check that it is a replica of the primary, because the %s "+
				"refuses pg_control_system() (%s); GRANT EXECUTE ON FUNCTION pg_control_system() TO the role tally connects as, "+
				"or leave read_url out", which, pe.Message)
		}
		return fmt.Errorf("store: identify the %s: %w", which, errors.Join(rewards.ErrUnavailable, err))
	}
	if err := db.probe.QueryRowContext(ctx, q).Scan(&primaryID, &primaryDB); err != nil {
		return identify("primary", err)
	}
	if err := db.replicaProbe.QueryRow(ctx, q).Scan(&replicaID, &replicaDB); err != nil {
		return identify("read replica", err)
	}
	if primaryID != replicaID || (primaryDB != replicaDB && !anyDatabase) {
		return fmt.Errorf("store: database.read_url is not a replica of database.url: it is database %q of cluster %d, "+
			"the primary is database %q of cluster %d (read_url must be a physical standby of the primary, same database)",
			replicaDB, replicaID, primaryDB, primaryID)
	}
	return nil
}

// sqliteURIPath escapes a file path for SQLite's "file:" URI, which decodes %HH and ends
// the path at "#": unescaped, "data#2/tally.db" opened a file named "data". (A "?" never
// gets here: parseURL refuses it.)
func sqliteURIPath(path string) string {
	return strings.NewReplacer("%", "%25", "#", "%23").Replace(path)
}

// parseURL turns a database URL into a dialect and a driver DSN.
func parseURL(raw string) (Dialect, string, error) {
	switch {
	case strings.HasPrefix(raw, "sqlite://"):
		path := strings.TrimPrefix(raw, "sqlite://")
		if strings.Contains(path, "?") {
			// Cut there, "data?2/tally.db" opened the file "data".
			return "", "", fmt.Errorf("store: a sqlite:// URL takes no query and its path no '?', got %q", raw)
		}
		if path == "" {
			return "", "", fmt.Errorf("store: database url %q has no file path", raw)
		}
		return SQLite, path, nil
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		return Postgres, raw, nil
	}
	return "", "", fmt.Errorf("store: database url must start with sqlite:// or postgres://, got %q", redactURL(raw))
}

// redactURL hides a password in a URL so it can appear in errors and logs; one that does
// not parse is hidden whole (there is no telling where its password is then).
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(a URL that does not parse)"
	}
	return u.Redacted()
}

// Dialect reports which database this is.
func (db *DB) Dialect() Dialect { return db.dialect }

// Now is the store's clock (UTC, microsecond precision).
func (db *DB) Now() time.Time { return db.now() }

// Close releases the pools.
func (db *DB) Close() error {
	if db.attempts != nil {
		db.attempts.close()
	}
	if db.reads != nil {
		db.balances.close()
		db.reads.Close()
	}
	if db.replicaProbe != nil {
		db.replicaProbe.Close()
	}
	return errors.Join(db.probe.Close(), db.sql.Close())
}

// openProbe opens Ready's one-connection pool.
func openProbe(dial gorm.Dialector, cfg *gorm.Config) (*sql.DB, error) {
	g, err := gorm.Open(dial, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: open the readiness probe: %w", errors.Join(rewards.ErrUnavailable, err))
	}
	probe, err := g.DB()
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	probe.SetMaxOpenConns(1)
	probe.SetMaxIdleConns(1)
	return probe, nil
}

// Ping checks the database answers, on the probe's own connection: it does not wait
// for a connection the writers hold.
func (db *DB) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := db.probe.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping: %w", errors.Join(rewards.ErrUnavailable, err))
	}
	return nil
}

// ReadReplica checks the read replica (read_url) answers, on a connection of its own;
// nil when there is none. Ready does not ask it: the replica serves only the publisher's
// reads, and an instance whose replica is down still records events and redeems.
func (db *DB) ReadReplica(ctx context.Context) error {
	if db.replicaProbe == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := db.replicaProbe.Ping(ctx); err != nil {
		return fmt.Errorf("store: ping the read replica: %w", errors.Join(rewards.ErrUnavailable, err))
	}
	return nil
}

func (db *DB) goose(conn *sql.DB, opts ...goose.ProviderOption) (*goose.Provider, error) {
	fsys, err := migrations.FS(string(db.dialect))
	if err != nil {
		return nil, err
	}
	d := goose.DialectPostgres
	if db.dialect == SQLite {
		d = goose.DialectSQLite3
	}
	return goose.NewProvider(d, conn, fsys, opts...)
}

// Migrate applies every pending migration. Goose takes a lock (Postgres's advisory
// lock, a file lock beside a SQLite file) so processes starting together do not race.
func (db *DB) Migrate(ctx context.Context, log io.Writer) error {
	// provider is goose with its lock, made anew for each try below: the Postgres
	// locker counts its retries across every lock it takes, so one shared by the tries
	// had its ten minutes spent by the first ones.
	provider := func() (*goose.Provider, error) {
		var opts []goose.ProviderOption
		if db.dialect == Postgres {
			// Goose locks only when given a locker: a session advisory lock, so replicas
			// starting together apply each migration once, one after the other.
			// Retry every second for up to ten minutes: a replica waits for another's
			// migrations rather than give up on a long one.
			locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 600))
			if err != nil {
				return nil, fmt.Errorf("store: migrations: %w", err)
			}
			opts = append(opts, goose.WithSessionLocker(locker))
		} else if l := sqliteMigrationLock(db.path); l != nil {
			opts = append(opts, goose.WithLocker(l))
		}
		p, err := db.goose(db.sql, opts...)
		if err != nil {
			return nil, fmt.Errorf("store: migrations: %w", err)
		}
		return p, nil
	}
	p, err := provider()
	if err != nil {
		return err
	}
	if err := notNewer(ctx, p); err != nil {
		return err
	}
	if db.beforeMigrateUp != nil {
		db.beforeMigrateUp()
	}
	for try := 1; ; try++ {
		if try > 1 {
			if p, err = provider(); err != nil {
				return err
			}
		}
		res, err := p.Up(ctx)
		if pe := (*goose.PartialError)(nil); errors.As(err, &pe) {
			res = pe.Applied // printed too: they stay applied
		}
		for _, r := range res {
			if log != nil {
				fmt.Fprintf(log, "migrated %s (%s)\n", r.Source.Path, r.Duration.Round(time.Millisecond))
			}
		}
		if isLockTimeout(err) && try < migrateLockTries {
			// A migration that locks a hot table gives up its wait after a few seconds
			// (SET LOCAL lock_timeout in it): waiting behind a long transaction, it held
			// every reader and writer of the table queued behind it for as long.
			// Between tries they run; the migration then asks again.
			if log != nil {
				fmt.Fprintf(log, "a migration waited too long for a table lock (another transaction holds it); trying again (%d of %d)\n", try, migrateLockTries)
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("store: migrate: %w", ctx.Err())
			case <-time.After(migrateLockPause):
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("store: migrate: %w", err)
		}
		break
	}
	// Again: a newer tally's migration may have committed while this one waited for
	// goose's lock, and Up ignores versions it does not know. Marked current, this
	// process would have served by older rules on the newer schema.
	if err := notNewer(ctx, p); err != nil {
		return err
	}
	// The schema is this binary's now: a newer replica that migrates before the first
	// readiness probe must not make it not ready (Ready's cache, as for a process that
	// found the schema current).
	db.migrated.Store(true)
	return nil
}

// readWithoutJIT runs fn in a read-only transaction without JIT on Postgres, and on the
// connection pool on SQLite. A query whose plan is costed past jit_above_cost (100,000)
// is compiled anew on every call, ~40-300 ms each, far more than the query itself: the
// settlement walk before migration 00032 (a subquery per wallet found) at 13,600 wallets,
// and DueEndpoints, once a second, over 1,000 endpoints on an outbox never analyzed (316
// ms a poll, a quarter of a core of an idle instance; 6 ms without JIT).
func (db *DB) readWithoutJIT(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return db.readWith(ctx, withoutJIT, fn)
}

// readByKey is readWithoutJIT for a read whose every scan reaches its rows by key, with
// sequential scans off too: see byKey.
func (db *DB) readByKey(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return db.readWith(ctx, byKey, fn)
}

// Planner settings for a read-only transaction on Postgres (readWith), as one statement.
const (
	withoutJIT = `SELECT set_config('jit', 'off', true)`
	// byKey also turns sequential scans off. Where a query's keys come from a VALUES
	// list, Postgres estimates each key's rows from the column's statistics, not from
	// the key: with one endpoint's 20,000 deliveries the whole outbox, every other
	// endpoint's check "costs" a scan that stops at its first row, and each of them read
	// all 20,000 (DueEndpoints over 1,000 endpoints: 2 s a poll).
	byKey = `SELECT set_config('jit', 'off', true), set_config('enable_seqscan', 'off', true)`
)

// readWith runs fn in a read-only transaction on Postgres after the settings statement,
// and on the connection pool on SQLite.
func (db *DB) readWith(ctx context.Context, settings string, fn func(tx *gorm.DB) error) error {
	if db.dialect != Postgres {
		return fn(db.gorm.WithContext(ctx))
	}
	return db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if _, err := rawExec(tx, settings); err != nil {
			return err
		}
		return fn(tx)
	}, &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelReadCommitted})
}

// readCommitted is the isolation every transaction of the store is written for, named
// in its BEGIN whatever the server's, database's or role's default_transaction_isolation
// says: a row read again after its lock is taken sees what committed meanwhile, and an
// INSERT … ON CONFLICT DO NOTHING and the read after it see the row another transaction
// committed; under a REPEATABLE READ or SERIALIZABLE default those reads saw their
// snapshot and contended writes failed as serialization errors (review helper 229). In
// the BEGIN, not a connection's startup parameter, which PgBouncer refuses (review
// helper 234), and at no cost: the BEGIN is sent anyway. The payout report asks for
// REPEATABLE READ where it needs one snapshot; the read pool's single statements run
// under the server's default.
var readCommitted = &sql.TxOptions{Isolation: sql.LevelReadCommitted}

// execAlone runs one write outside the store's write transactions (no write turn on
// SQLite), in a transaction of its own that names READ COMMITTED on Postgres, as db.tx's
// do: on its own it ran under the server's default, and under a SERIALIZABLE default two
// replicas racing for a lease got a serialization error where the loser should find it
// taken (review helper 237). It returns the rows affected.
func (db *DB) execAlone(ctx context.Context, q string, args ...any) (n int64, err error) {
	g := db.gorm.WithContext(ctx)
	if db.dialect != Postgres {
		return rawExec(g, q, args...)
	}
	err = g.Transaction(func(tx *gorm.DB) error {
		n, err = rawExec(tx, q, args...)
		return err
	}, readCommitted)
	return n, err
}

// migrateLockTries and migrateLockPause: a migration that gave up waiting for a table
// lock is tried again, this many times in all, after this pause (about 10 minutes with
// its 3 s waits), as goose's own lock waits for another replica's migrations.
const (
	migrateLockTries = 120
	migrateLockPause = 2 * time.Second
)

// isLockTimeout reports a Postgres statement that gave up waiting for a lock
// (lock_timeout: SQLSTATE 55P03).
func isLockTimeout(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && pg.Code == "55P03"
}

// Ready reports nil when the database answers and no migration is pending.
func (db *DB) Ready(ctx context.Context) error {
	if err := db.Ping(ctx); err != nil {
		return err
	}
	if db.migrated.Load() { // a binary's migrations, once applied, stay applied
		return nil
	}
	// goose's HasPending creates its version table when it is missing: asked of a
	// database never migrated, `tally check` or `tally settle` (which only ask) would
	// leave Tally's table in it, in whatever database the URL named by mistake.
	if ok, err := db.versionTableExists(ctx); err != nil {
		return fmt.Errorf("store: migration status: %w", errors.Join(rewards.ErrUnavailable, err))
	} else if !ok {
		return ErrNotMigrated
	}
	p, err := db.goose(db.probe)
	if err != nil {
		return err
	}
	pending, err := p.HasPending(ctx)
	if err != nil {
		return fmt.Errorf("store: migration status: %w", errors.Join(rewards.ErrUnavailable, err))
	}
	if pending {
		return ErrNotMigrated
	}
	if err := notNewer(ctx, p); err != nil {
		return err
	}
	db.migrated.Store(true)
	return nil
}

// versionTableExists reports whether goose's version table is there: whether the
// database was ever migrated.
func (db *DB) versionTableExists(ctx context.Context) (bool, error) {
	q := `SELECT to_regclass('goose_db_version') IS NOT NULL`
	if db.dialect == SQLite {
		q = `SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'goose_db_version')`
	}
	var ok bool
	err := db.probe.QueryRowContext(ctx, q).Scan(&ok)
	return ok, err
}

// notNewer refuses a database migrated past the last migration this binary holds: goose
// applies what is missing and ignores versions it does not know, so a rolled-back
// binary (or a finance machine's older CLI) ran on a schema whose rules it does not
// follow (an older one pays score targets without the claims a newer one checks). A
// process that found the schema current before keeps running (Ready caches it), so a
// rolling deploy's older replicas serve on while the new ones migrate.
func notNewer(ctx context.Context, p *goose.Provider) error {
	current, err := p.GetDBVersion(ctx)
	if err != nil {
		return fmt.Errorf("store: migration status: %w", errors.Join(rewards.ErrUnavailable, err))
	}
	var known int64
	for _, s := range p.ListSources() {
		known = max(known, s.Version)
	}
	if current > known {
		return fmt.Errorf("%w: it is at migration %d, this binary knows up to %d; run a tally that knows it", ErrSchemaNewer, current, known)
	}
	return nil
}

// tx runs fn in one transaction, retrying a bounded number of times when the database
// reports a deadlock or serialization failure (safe: fn is re-run from the start). A
// commit whose answer never came (fn succeeded, then the connection broke) is
// ErrOutcomeUnknown: it may have committed, so it is neither retried here nor reported
// as "nothing was saved".
func (db *DB) tx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	release, err := db.takeWriteTurn(ctx)
	if err != nil {
		return err
	}
	defer release()
	var opts []*sql.TxOptions
	if db.dialect == Postgres {
		opts = append(opts, readCommitted)
	}
	for attempt := 0; attempt < 3; attempt++ {
		committing := false
		err = db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			committing = false
			if err := fn(tx); err != nil {
				return err
			}
			committing = true
			if db.failCommit != nil {
				return db.failCommit()
			}
			return nil
		}, opts...)
		if err != nil && committing && db.dialect == Postgres && commitUnanswered(err) {
			return fmt.Errorf("%w: %w: %w", rewards.ErrUnavailable, rewards.ErrOutcomeUnknown, err)
		}
		if err == nil || !retryable(err) {
			break
		}
		db.log.Debug("store: retrying transaction", "attempt", attempt+1, "err", err)
		if db.retried != nil {
			db.retried(err)
		}
	}
	return translate(err)
}
