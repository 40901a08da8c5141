package store_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pressly/goose/v3/lock"

	"tally/rewards"
	"tally/store"
	"tally/store/storetest"
)

// migratedTo opens a new database of dialect dia migrated up to version only, as a
// database of an older Tally would be, and returns it with its URL.
func migratedTo(t *testing.T, dia store.Dialect, version int64) (*store.DB, string) {
	t.Helper()
	u := storetest.URL(t, dia)
	old, err := store.Open(context.Background(), u, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.MigrateTo(context.Background(), old, version); err != nil {
		t.Fatal(err)
	}
	return old, u
}

// A database created before the applier existed (migrations 1–2, with events, entries
// and a session that reference them) is upgraded in place: the rows survive, their
// references still hold, and new events are recorded and applied as usual.
func TestUpgradeFromBeforeTheApplier(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		old, u := migratedTo(t, dia, 2)
		for _, q := range []string{
			`INSERT INTO inbox (id, property, source, dedupe_key, user_id, kind, event_type, raw_body, event, received_at, status, reason, applied_at)
				VALUES (7, 'arcade', 'gamezop_spp', 'old-1', 'u1', 'session', 'spp', '{}', '{}', '2026-11-01 10:00:00', 'applied', '', '2026-11-01 10:00:00')`,
			`INSERT INTO inbox (id, property, source, dedupe_key, user_id, kind, event_type, raw_body, event, received_at, status, reason)
				VALUES (8, 'arcade', 'gamezop_spp', 'old-2', 'u1', 'session', 'spp', '{}', '{}', '2026-11-01 10:00:00', 'quarantined', 'why')`,
			`INSERT INTO journal (id, property, user_id, kind, rule, inbox_id, ref, created_at)
				VALUES (3, 'arcade', 'u1', 'revenue', 'revenue', 7, 'event:7', '2026-11-01 10:00:00')`,
			`INSERT INTO sessions (inbox_id, property, user_id, session_id, duration_seconds, revenue_usd, gross, withheld, credited, capped_excess, received_at)
				VALUES (7, 'arcade', 'u1', 'old-1', 60, '0', '0', '0', '0', '0', '2026-11-01 10:00:00')`,
		} {
			if err := old.ExecRaw(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		if dia == store.Postgres { // explicit ids do not move the sequences; a real database's are past them
			if err := old.ExecRaw(ctx, `SELECT setval('inbox_id_seq', 8), setval('journal_id_seq', 3)`); err != nil {
				t.Fatal(err)
			}
		}
		_ = old.Close()

		db := storetest.OpenURL(t, u, nil) // migrates the rest
		k, _, err := db.Event(ctx, 7)
		if err != nil || k.Status != rewards.StatusApplied || k.DedupeKey != "old-1" || k.AppliedAt == nil {
			t.Fatalf("old applied event: %+v, %v", k, err)
		}
		if q, err := db.Events(ctx, rewards.EventFilter{Status: rewards.StatusQuarantined}); err != nil || len(q) != 1 || q[0].ID != 8 || q[0].Reason != "why" {
			t.Fatalf("old quarantine: %+v, %v", q, err)
		}
		// The journal row and the session still reach the event they were written for.
		if n, err := store.QueryInt(ctx, db, `SELECT COUNT(*) FROM journal j JOIN inbox i ON i.id = j.inbox_id JOIN sessions s ON s.inbox_id = i.id
			WHERE i.dedupe_key = 'old-1'`); err != nil || n != 1 {
			t.Fatalf("references after the upgrade: %d, %v", n, err)
		}
		if dia == store.SQLite {
			if n, err := store.QueryInt(ctx, db, `SELECT COUNT(*) FROM pragma_foreign_key_check`); err != nil || n != 0 {
				t.Fatalf("foreign key violations after the upgrade: %d, %v", n, err)
			}
		}
		res, err := ingest(db, ctx, []rewards.Inbound{in(session("u1", "new-1", "0.000012", 60)), in(session("u1", "old-1", "0.000012", 60))})
		if err != nil || res[0].Status != rewards.StatusApplied || !res[1].Duplicate || res[1].EventID != 7 || res[0].EventID <= 8 {
			t.Fatalf("after the upgrade: %+v, %v", res, err)
		}
	})
}

// Migration 12 lets the audit log record settlement runs started by hand. The audit
// rows written before it keep their ids, the next row's comes after theirs, and the log
// is still append-only (SQLite rebuilds the table to change its check).
func TestUpgradeAuditForSettlement(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		old, u := migratedTo(t, dia, 11)
		for _, q := range []string{
			`INSERT INTO audit (actor, action, property, target, reason, detail, created_at)
				VALUES ('alice', 'adjustment', 'arcade', 'user:u1', 'ticket 1', 'adjustment:1 of 5 to available', '2026-11-01 10:00:00')`,
			`INSERT INTO audit (actor, action, property, target, reason, detail, created_at)
				VALUES ('alice', 'replay', 'arcade', 'event:9', '', 'applied', '2026-11-01 10:00:01')`,
		} {
			if err := old.ExecRaw(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		if err := old.ExecRaw(ctx, `INSERT INTO audit (actor, action, property, target, created_at)
			VALUES ('alice', 'settlement', 'arcade', 'settlement:1', '2026-11-01 10:00:02')`); err == nil {
			t.Fatal("before migration 12 the audit log took a settlement")
		}
		_ = old.Close()

		clock := storetest.NewClock(t0)
		db := storetest.OpenURL(t, u, clock.Now) // migrates the rest
		ingestOne(t, db, in(session("u1", "s-1", "0.0001", 60)))
		clock.Advance(25 * time.Hour)
		run, err := db.SettleWith(ctx, "arcade", 0, store.SettleOptions{Actor: "bob"})
		if err != nil || run.Users != 1 {
			t.Fatalf("settle by hand: %+v, %v", run, err)
		}
		audit, err := db.Audit(ctx, rewards.AuditFilter{Limit: 10})
		if err != nil || len(audit) != 3 {
			t.Fatalf("audit after the upgrade: %+v, %v", audit, err)
		}
		if a := audit[0]; a.ID <= 2 || a.Actor != "bob" || a.Action != rewards.AuditSettlement || a.Target != fmt.Sprintf("settlement:%d", run.ID) {
			t.Fatalf("the settlement's audit entry: %+v", a)
		}
		if a := audit[2]; a.ID != 1 || a.Actor != "alice" || a.Action != rewards.AuditAdjustment || a.Reason != "ticket 1" || a.Detail != "adjustment:1 of 5 to available" {
			t.Fatalf("the oldest audit entry after the upgrade: %+v", a)
		}
		for _, q := range []string{`UPDATE audit SET actor = 'mallory' WHERE id = 1`, `DELETE FROM audit WHERE id = 1`} {
			if err := db.ExecRaw(ctx, q); err == nil {
				t.Fatalf("%s: the audit log is no longer append-only", q)
			}
		}
	})
}

// Replicas starting together on a new Postgres database migrate it one after the other,
// under goose's session lock: while another holds it, Migrate waits and changes nothing.
func TestMigrationsTakeTheLock(t *testing.T) {
	u := storetest.URL(t, store.Postgres)
	ctx := context.Background()
	holder, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(ctx)
	if _, err := holder.Exec(ctx, `SELECT pg_advisory_lock($1)`, lock.DefaultLockID); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(ctx, u, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	waitCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := db.Migrate(waitCtx, nil); err == nil {
		t.Fatal("migrated while another replica held the migration lock")
	}
	if err := db.Ready(ctx); err == nil {
		t.Fatal("a migration ran while the lock was held")
	}
	if _, err := holder.Exec(ctx, `SELECT pg_advisory_unlock($1)`, lock.DefaultLockID); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			other, err := store.Open(ctx, u, store.Options{})
			if err == nil {
				defer other.Close()
				err = other.Migrate(ctx, nil)
			}
			errs <- err
		}()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Errorf("migrate: %v", err)
		}
	}
	if err := db.Ready(ctx); err != nil {
		t.Fatalf("after the migrations: %v", err)
	}
}

// A SQLite path is a path, whatever it holds: SQLite reads the driver's "file:" URI, so
// an unescaped "#" ended the path ("data#2/tally.db" opened a file named "data", empty
// or another config's) and "%41" read as "A".
func TestSQLitePathWithURICharacters(t *testing.T) {
	for _, name := range []string{"data#2/tally.db", "100%41/tally.db", "a b/t#1%.db"} {
		dir := t.TempDir()
		path := filepath.Join(dir, name)
		db, err := store.Open(context.Background(), "sqlite://"+path, store.Options{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		err = db.Migrate(context.Background(), nil)
		_ = db.Close()
		if err != nil {
			t.Fatalf("%s: migrate: %v", name, err)
		}
		if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
			t.Errorf("%s: the configured file: %v", name, err)
		}
		var stray []string
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && !strings.HasPrefix(p, path) {
				stray = append(stray, p)
			}
			return nil
		})
		if len(stray) > 0 {
			t.Errorf("%s: opened %v instead", name, stray)
		}
	}
}

// A "?" in a SQLite URL is refused: the path was cut there, so "data?2/tally.db" opened
// a file named "data".
func TestSQLiteURLWithAQuestionMark(t *testing.T) {
	dir := t.TempDir()
	_, err := store.Open(context.Background(), "sqlite://"+filepath.Join(dir, "data?2", "tally.db"), store.Options{})
	if err == nil || !strings.Contains(err.Error(), "takes no query") {
		t.Fatalf("err = %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("made %v", entries)
	}
}

// A database URL Tally cannot open is named in the error without its password, even one
// that does not parse (the password's place is then unknown).
func TestOpenErrorHidesTheURLsPassword(t *testing.T) {
	for _, raw := range []string{"mysql://alice:s3cret@db.example/tally", "postgress://alice:s3cret@db.example:abc/tally"} {
		_, err := store.Open(context.Background(), raw, store.Options{})
		if err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: %v", raw, err)
		}
	}
}

// Migration 22 gives each user paid by a target per day or per play before it the
// target's once claim, held by their first such payment, so a target switched to
// `per: once` afterwards does not pay them again. A once claim already there stays.
func TestUpgradeTargetClaimsAcrossPer(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		old, u := migratedTo(t, dia, 21)
		rows := []struct {
			id          int
			user, claim string
		}{
			{1, "u1", "target:t1:day:2026-11-01"},
			{2, "u1", "target:t1:day:2026-11-02"},
			{3, "u2", "target:t1:play:p:1"},
			{4, "u3", "target:t1"},
			{5, "u3", "target:t1:day:2026-11-03"},
			{6, "u1", "achievement:t9:day:x"},
		}
		for _, r := range rows {
			for _, q := range []string{
				fmt.Sprintf(`INSERT INTO journal (id, property, user_id, kind, rule, ref, created_at)
					VALUES (%d, 'arcade', '%s', 'target', 'target:t1', 'event:%d', '2026-11-0%d 10:00:00')`, r.id, r.user, r.id, r.id),
				fmt.Sprintf(`INSERT INTO claims (property, user_id, claim, journal_id, created_at)
					VALUES ('arcade', '%s', '%s', %d, '2026-11-0%d 10:00:00')`, r.user, r.claim, r.id, r.id),
			} {
				if err := old.ExecRaw(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
		}
		_ = old.Close()

		db := storetest.OpenURL(t, u, nil) // migrates the rest
		for _, c := range []struct {
			user    string
			journal int64
		}{{"u1", 1}, {"u2", 3}, {"u3", 4}} {
			n, err := store.QueryInt(ctx, db, fmt.Sprintf(`SELECT journal_id FROM claims WHERE property = 'arcade' AND user_id = '%s' AND claim = 'target:t1'`, c.user))
			if err != nil || n != c.journal {
				t.Errorf("%s's once claim: journal %d, %v; want %d", c.user, n, err, c.journal)
			}
		}
		if n, err := store.QueryInt(ctx, db, `SELECT COUNT(*) FROM claims`); err != nil || n != 8 {
			t.Errorf("%d claims after the upgrade, %v; want the 6 and two once claims", n, err)
		}
	})
}

// Migration 00032 gives every lot already written its wallet's property, so the
// settlement of each property finds its own after the upgrade.
func TestUpgradeGivesLotsTheirProperty(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		old, u := migratedTo(t, dia, 31)
		for _, q := range []string{
			`INSERT INTO wallets (property, user_id, created_at, updated_at, feed_seq)
				VALUES ('arcade', 'u1', '2026-11-02 00:00:00', '2026-11-02 00:00:00', 1),
					('cents', 'u1', '2026-11-02 00:00:00', '2026-11-02 00:00:00', 2)`,
			`INSERT INTO journal (id, property, user_id, kind, rule, ref, created_at)
				VALUES (1, 'arcade', 'u1', 'revenue', 'revenue', 'session:s1', '2026-11-02 00:00:00'),
					(2, 'cents', 'u1', 'revenue', 'revenue', 'session:s1', '2026-11-02 00:00:00')`,
			`INSERT INTO lots (wallet_id, journal_id, amount, matures_at)
				SELECT w.id, j.id, '1', '2026-11-03 00:00:00' FROM wallets w JOIN journal j ON j.property = w.property`,
			`INSERT INTO lots (wallet_id, journal_id, amount, matures_at)
				SELECT w.id, j.id, '2', '2026-11-04 00:00:00' FROM wallets w JOIN journal j ON j.property = w.property
				WHERE w.property = 'cents'`,
		} {
			if err := old.ExecRaw(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		_ = old.Close()
		db := storetest.OpenURL(t, u, nil) // migrates the rest
		for property, want := range map[string]int64{"arcade": 1, "cents": 2} {
			n, err := store.QueryInt(ctx, db, `SELECT COUNT(*) FROM lots l JOIN wallets w ON w.id = l.wallet_id
				WHERE l.property = w.property AND w.property = '`+property+`'`)
			if err != nil || n != want {
				t.Errorf("%s's lots with its property after the upgrade: %d, %v; want %d", property, n, err, want)
			}
		}
	})
}

// A migration that locks a hot table (00032, lots) gives up its wait after a few
// seconds while another transaction holds the table, lets the readers and writers queued
// behind it through, and is tried again until it gets the lock. It waited for good, and
// every balance read and apply on every replica queued behind it (39 s behind a 40 s
// reader in review: 503s).
func TestMigrationWaitingForATableLockIsTriedAgain(t *testing.T) {
	ctx := context.Background()
	old, u := migratedTo(t, store.Postgres, 31)
	db, err := store.Open(ctx, u, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	var log lockedBuffer
	done := make(chan error, 1)
	if err := old.HoldTableRead(ctx, "lots", func() {
		go func() { done <- db.Migrate(ctx, &log) }()
		for deadline := time.Now().Add(30 * time.Second); !strings.Contains(log.String(), "trying again"); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) { // polls the condition: the migration gave up its wait once
				t.Fatalf("the migration did not give up waiting for lots in 30 s:\n%s", log.String())
			}
		}
		// Meanwhile lots can be read: nothing waits in the queue for it.
		if n, err := store.QueryInt(ctx, old, `SELECT count(*) FROM lots`); err != nil || n != 0 {
			t.Errorf("reading lots while the migration is between tries: %d %v", n, err)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Migrate: %v\n%s", err, log.String())
	}
	if n, err := store.QueryInt(ctx, db, `SELECT count(*) FROM lots WHERE property = ''`); err != nil || n != 0 {
		t.Fatalf("lots.property after the migration: %d %v", n, err)
	}
	_ = old.Close()
}

// A database migrated while 00023 (an index of tournament plays, since superseded) was
// the newest migration gets 00024's table all the same: 00024 came as a new version, not
// as a new 00023 that such a database would never run.
func TestUpgradeFromThePlaysIndex(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		old, u := migratedTo(t, dia, 23)
		_ = old.Close()
		db := storetest.OpenURL(t, u, nil) // migrates the rest
		if n, err := store.QueryInt(ctx, db, `SELECT COUNT(*) FROM tournament_reports`); err != nil || n != 0 {
			t.Fatalf("tournament_reports after the upgrade: %d, %v", n, err)
		}
	})
}

// Asking whether a database never migrated is ready answers "migrations pending" and
// leaves it as it was: goose's HasPending created its version table, so `tally check`
// pointed at the wrong database left Tally's table in it.
func TestReadyOnADatabaseNeverMigratedChangesNothing(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		db, err := store.Open(ctx, storetest.URL(t, dia), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.Ready(ctx); !errors.Is(err, store.ErrNotMigrated) {
			t.Fatalf("Ready: %v, want migrations pending", err)
		}
		q := `SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'`
		if dia == store.SQLite {
			q = `SELECT count(*) FROM sqlite_master WHERE type = 'table'`
		}
		if n, err := store.QueryInt(ctx, db, q); err != nil || n != 0 {
			t.Fatalf("tables after Ready: %d, %v; want none", n, err)
		}
		if err := db.Migrate(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if err := db.Ready(ctx); err != nil {
			t.Fatalf("Ready once migrated: %v", err)
		}
	})
}

// A database migrated by a newer tally (a version this binary does not hold) is refused
// by Migrate and Ready: goose ignores versions it does not know, so a rolled-back binary
// served on a schema whose rules it does not follow. A process that found the schema
// current before keeps running.
func TestSchemaNewerThanTheBinaryIsRefused(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		u := storetest.URL(t, dia)
		running := storetest.OpenURL(t, u, nil)
		if err := running.Ready(ctx); err != nil {
			t.Fatal(err)
		}
		// A replica that migrated and has not been probed yet when the newer one migrates
		// (a rolling deploy's seconds between the two) is as ready as one probed before.
		justMigrated := storetest.OpenURL(t, u, nil)
		// What the next release's `tally migrate` leaves behind.
		if err := running.ExecRaw(ctx, `INSERT INTO goose_db_version (version_id, is_applied) VALUES (9999, true)`); err != nil {
			t.Fatal(err)
		}
		if err := running.Ready(ctx); err != nil {
			t.Fatalf("a replica running before the newer migration: %v", err)
		}
		if err := justMigrated.Ready(ctx); err != nil {
			t.Fatalf("a replica that migrated just before the newer migration: %v", err)
		}
		older, err := store.Open(ctx, u, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer older.Close()
		if err := older.Migrate(ctx, nil); !errors.Is(err, store.ErrSchemaNewer) || !strings.Contains(err.Error(), "at migration 9999") {
			t.Fatalf("Migrate: %v", err)
		}
		if err := older.Ready(ctx); !errors.Is(err, store.ErrSchemaNewer) {
			t.Fatalf("Ready: %v", err)
		}
	})
}

// An older replica whose start meets a newer release's migration in progress (it passed
// the schema check, then waited for goose's lock while the newer one committed, and
// goose's Up ignores versions it does not know) is refused, not marked current and
// ready to serve by older rules.
func TestMigrateMeetingANewerMigrationIsRefused(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		u := storetest.URL(t, dia)
		newer := storetest.OpenURL(t, u, nil)
		starting, err := store.Open(ctx, u, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer starting.Close()
		store.BeforeMigrateUp(starting, func() {
			if err := newer.ExecRaw(ctx, `INSERT INTO goose_db_version (version_id, is_applied) VALUES (9999, true)`); err != nil {
				t.Error(err)
			}
		})
		if err := starting.Migrate(ctx, nil); !errors.Is(err, store.ErrSchemaNewer) || !strings.Contains(err.Error(), "at migration 9999") {
			t.Fatalf("Migrate meeting a newer migration: %v", err)
		}
		if err := starting.Ready(ctx); !errors.Is(err, store.ErrSchemaNewer) {
			t.Fatalf("Ready after it: %v", err)
		}
	})
}

// Processes migrating one SQLite file at once (a `tally migrate` beside a starting
// `tally serve`) all succeed, each migration applied once. SQLite has no lock goose
// takes: the ones that lost the race failed with "partial migration error … duplicate
// column name", which read like a half-migrated ledger, though the winner had finished.
func TestSQLiteMigrationsAtOnceAllSucceed(t *testing.T) {
	ctx := context.Background()
	u := storetest.URL(t, store.SQLite)
	const n = 3
	var ready sync.WaitGroup
	ready.Add(n)
	errs := make(chan error, n)
	for range n {
		db, err := store.Open(ctx, u, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		store.BeforeMigrateUp(db, func() { ready.Done(); ready.Wait() }) // all read the schema before any migrates
		go func() { errs <- db.Migrate(ctx, nil) }()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("migrate: %v", err)
		}
	}
	db := storetest.OpenURL(t, u, nil)
	if err := db.Ready(ctx); err != nil {
		t.Fatalf("after the migrations: %v", err)
	}
	if dups, err := store.QueryInt(ctx, db, `SELECT count(*) - count(DISTINCT version_id) FROM goose_db_version`); err != nil || dups != 0 {
		t.Fatalf("versions recorded twice: %d %v", dups, err)
	}
}

// lockedBuffer is a log sink a migration's goroutine and the test share.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
