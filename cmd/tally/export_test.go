package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"io"
	"io/fs"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/shopspring/decimal"
	"github.com/xuri/excelize/v2"

	"tally/rewards"
	"tally/store"
	"tally/store/storetest"
)

// exportFixture ingests a little November activity for arcade into the database at url.
func exportFixture(t *testing.T, url string) {
	t.Helper()
	clock := storetest.NewClock(time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC))
	db := storetest.OpenURL(t, url, clock.Now)
	rules := rewards.Rules{Property: "arcade", Currency: "COIN",
		Revenue: &rewards.RevenueRule{Version: "r1", UnitsPerUSD: decimal.NewFromInt(100000), Share: decimal.RequireFromString("0.7"),
			Buffer: decimal.RequireFromString("0.2"), MinSessionSeconds: 10, Countries: map[string]decimal.Decimal{"*": decimal.NewFromInt(1)}}}
	var batch []rewards.Inbound
	for _, u := range []string{"sub1", "=cmd|' /C calc'!A0", "sub2"} {
		ev := rewards.Event{Source: rewards.SourceGamezopSPP, Kind: rewards.KindSession, Type: "spp", DedupeKey: "s-" + u, User: u,
			Session: &rewards.Session{SessionID: "s-" + u, RevenueUSD: decimal.RequireFromString("0.000012"), DurationSeconds: 60}}
		batch = append(batch, rewards.Inbound{Property: "arcade", Event: ev, Raw: []byte(`{}`)})
	}
	ctx := context.Background()
	if _, err := db.Record(ctx, batch); err != nil {
		t.Fatal(err)
	}
	got, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded}, func(k rewards.Kept) rewards.Decision {
		return rewards.Decision{Event: k.Event, Rules: &rules}
	})
	if err != nil || len(got) != len(batch) {
		t.Fatalf("apply: %+v %v", got, err)
	}
}

// TestExportPayoutsMatchesHTTP: `tally export payouts` writes the bytes the admin API
// serves, to stdout or atomically to --out, and ends with a summary line on stderr.
func TestExportPayoutsMatchesHTTP(t *testing.T) {
	cfgPath, err := filepath.Abs("../../tally.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		url := storetest.URL(t, d)
		exportFixture(t, url)
		genv := getenv(map[string]string{"TALLY_DATABASE_URL": url})
		ctx := context.Background()
		args := []string{"export", "payouts", "--config", cfgPath, "--from", "2026-11-01", "--to", "2026-12-01"}

		// What the HTTP report serves, through the same wiring as serve.
		cfg, err := loadConfig(cfgPath, genv)
		if err != nil {
			t.Fatal(err)
		}
		db, err := openStore(ctx, cfg, false, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		a := newApp(db, cfg, newLogger(io.Discard))
		defer a.Close()
		viaHTTP := func(format string) string {
			req := httptest.NewRequest("GET", "/v1/admin/reports/payouts?from=2026-11-01&to=2026-12-01&format="+format, nil)
			req.Header.Set("Authorization", "Bearer "+env["TALLY_ADMIN_TOKEN"])
			rec := httptest.NewRecorder()
			a.Handler().ServeHTTP(rec, req)
			if rec.Code != 200 {
				t.Fatalf("HTTP report: %d %s", rec.Code, rec.Body.String())
			}
			return rec.Body.String()
		}

		var stdout, stderr bytes.Buffer
		if err := run(ctx, args, genv, &stdout, &stderr); err != nil {
			t.Fatalf("export: %v\n%s", err, stderr.String())
		}
		if want := viaHTTP("csv"); stdout.String() != want {
			t.Fatalf("CLI csv:\n%s\nHTTP csv:\n%s", stdout.String(), want)
		}
		if !strings.Contains(stdout.String(), "\narcade,'=cmd|' /C calc'!A0,COIN,") {
			t.Fatalf("formula not escaped:\n%s", stdout.String())
		}
		wantSummary := "exported 3 rows; totals: opening_available=0 credited_revenue=2.016 credited_targets=0 credited_achievements=0" +
			" adjustments=0 settled=0 redeemed=0 closing_available=0 closing_pending=2.016 sessions=3 estimated_revenue_usd=0.000036 reversed=0 credited_release=0 credited_prizes=0\n"
		if stderr.String() != wantSummary {
			t.Fatalf("stderr (not a terminal: no progress line):\n%q\nwant\n%q", stderr.String(), wantSummary)
		}

		dir := t.TempDir()
		out := filepath.Join(dir, "nov.json")
		stdout.Reset()
		stderr.Reset()
		if err := run(ctx, append(args, "--format", "json", "--out", out), genv, &stdout, &stderr); err != nil {
			t.Fatalf("export --out: %v\n%s", err, stderr.String())
		}
		got, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if want := viaHTTP("json"); string(got) != want || stdout.Len() != 0 {
			t.Fatalf("CLI json file:\n%s\nHTTP json:\n%s\nstdout: %q", got, want, stdout.String())
		}
		if !strings.HasPrefix(stderr.String(), "exported 3 rows to "+out+"; totals: ") {
			t.Fatalf("stderr: %q", stderr.String())
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 1 {
			t.Fatalf("files left beside the report: %v", entries)
		}

		// --bom and --format xlsx give what bom=true and format=xlsx serve.
		stdout.Reset()
		if err := run(ctx, append(args, "--bom"), genv, &stdout, io.Discard); err != nil {
			t.Fatal(err)
		}
		if want := viaHTTP("csv&bom=true"); stdout.String() != want || !strings.HasPrefix(want, "\xEF\xBB\xBFproperty,") {
			t.Fatalf("CLI --bom:\n%q\nHTTP bom=true:\n%q", stdout.String(), want)
		}
		xlsx := filepath.Join(dir, "nov.xlsx")
		if err := run(ctx, append(args, "--format", "xlsx", "--out", xlsx), genv, io.Discard, io.Discard); err != nil {
			t.Fatal(err)
		}
		f, err := excelize.OpenFile(xlsx)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if user, _ := f.GetCellValue("payouts", "B2"); user != "=cmd|' /C calc'!A0" {
			t.Fatalf("xlsx B2 = %q, want the raw id as text", user)
		}
		if total, _ := f.GetCellValue("payouts", "A5"); total != "total" {
			t.Fatalf("xlsx A5 = %q, want the totals row", total)
		}
	})
}

// A report that does not add up (the ledger holds an available leg of a kind the report
// has no column for) is written for inspection, but the command fails: a script that
// closes the month must not take it for a good one.
func TestExportPayoutsThatDoNotReconcileFail(t *testing.T) {
	cfgPath, err := filepath.Abs("../../tally.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	url := storetest.URL(t, store.Postgres)
	exportFixture(t, url)
	raw, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_, err = raw.Exec(`WITH j AS (INSERT INTO journal (property, user_id, kind, rule, created_at)
			VALUES ('arcade', 'sub1', 'mystery', 'hand', '2026-11-03T00:00:00Z') RETURNING id)
		INSERT INTO entries (journal_id, property, user_id, account, bucket, kind, amount, created_at)
		SELECT j.id, 'arcade', 'sub1', a.account, a.bucket, 'mystery', a.amount, '2026-11-03T00:00:00Z'
		FROM j CROSS JOIN (VALUES ('', 'available', 5), ('@mystery', '', -5)) AS a (account, bucket, amount)`)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "nov.csv")
	var stderr bytes.Buffer
	err = run(context.Background(), []string{"export", "payouts", "--config", cfgPath, "--from", "2026-11-01", "--to", "2026-12-01", "--out", out},
		getenv(map[string]string{"TALLY_DATABASE_URL": url}), io.Discard, &stderr)
	if err == nil || !strings.Contains(err.Error(), "does not reconcile") {
		t.Fatalf("export of a report that does not add up: %v, want it to fail", err)
	}
	if _, serr := os.Stat(out); serr != nil || !strings.Contains(stderr.String(), "does not reconcile") || !strings.Contains(stderr.String(), "\nexported 3 rows to ") {
		t.Fatalf("the report is not kept for inspection: %v; stderr %q", serr, stderr.String())
	}
}

func TestExportPayoutsErrors(t *testing.T) {
	cfgPath, err := filepath.Abs("../../tally.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	url := storetest.URL(t, store.SQLite)
	genv := getenv(map[string]string{"TALLY_DATABASE_URL": url})
	migrate(t, cfgPath, genv)
	dir := t.TempDir()
	base := []string{"export", "payouts", "--config", cfgPath}
	cases := []struct {
		args []string
		want string // in the error; "" means a usage error
	}{
		{[]string{"export"}, ""},
		{[]string{"export", "balances"}, ""},
		{append(base, "--bogus"), ""},
		{append(base, "--to", "2026-12-01"), ""}, // a usage error, printed before anything is opened
		{append(base, "--from", "2026-11-01", "--to", "2026-11-01"), "to"},
		{append(base, "--from", "2026-11-01", "--to", "2026-12-01", "--property", "nope"), "property"},
		{append(base, "--from", "2026-11-01", "--to", "2026-12-01", "--format", "xml"), "format"},
		{append(base, "--from", "2026-11-01", "--to", "2026-12-01", "--out", filepath.Join(dir, "missing", "x.csv")), "no such file"},
	}
	for _, c := range cases {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), c.args, genv, &stdout, &stderr)
		switch {
		case err == nil:
			t.Errorf("%v: no error", c.args)
		case c.want == "" && err != errUsage:
			t.Errorf("%v: %v, want a usage error", c.args, err)
		case c.want != "" && !strings.Contains(err.Error(), c.want):
			t.Errorf("%v: %v, want it to name %q", c.args, err, c.want)
		}
		if stdout.Len() != 0 {
			t.Errorf("%v: wrote %q to stdout", c.args, stdout.String())
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("files left behind: %v", entries)
	}
}

// The --out file appears only when the report is complete.
func TestPartialFile(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "nov.csv")
	f, err := newPartialFile(out)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(f, "half a report")
	f.discard() // as after a failed export
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("files left behind: %v", entries)
	}
	if f, err = newPartialFile(out); err != nil {
		t.Fatal(err)
	}
	io.WriteString(f, "whole report")
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("the report exists before commit: %v", err)
	}
	if err := f.commit(); err != nil {
		t.Fatal(err)
	}
	f.discard() // deferred in cmdExport: a no-op after commit
	if b, err := os.ReadFile(out); err != nil || string(b) != "whole report" {
		t.Fatalf("%q %v", b, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("files beside the report: %v", entries)
	}
}

// fakeTerminal is stderr as a terminal, to see what a person at one would.
type fakeTerminal struct{ bytes.Buffer }

func (*fakeTerminal) Terminal() bool { return true }

// On a terminal, `tally export` draws a progress bar with the estimated total, clears
// it, and ends with the same summary line; on anything else (the other tests) stderr
// has the summary line only.
func TestExportPayoutsProgressBar(t *testing.T) {
	cfgPath, err := filepath.Abs("../../tally.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	url := storetest.URL(t, store.SQLite)
	exportFixture(t, url)
	genv := getenv(map[string]string{"TALLY_DATABASE_URL": url})
	var stdout bytes.Buffer
	var stderr fakeTerminal
	args := []string{"export", "payouts", "--config", cfgPath, "--from", "2026-11-01", "--to", "2026-12-01"}
	if err := run(context.Background(), args, genv, &stdout, &stderr); err != nil {
		t.Fatalf("export: %v\n%s", err, stderr.String())
	}
	out := stderr.String()
	bar, summary, ok := strings.Cut(out, "exported 3 rows; totals: ")
	if !ok || strings.Contains(summary, "\r") || !strings.HasSuffix(summary, "\n") {
		t.Fatalf("stderr does not end with the summary line:\n%q", out)
	}
	// The bar starts blank, with the total the wallets gave (3 users), and is cleared.
	if !strings.Contains(bar, "payouts (about 3 rows, estimated)") || !strings.Contains(bar, "(0/3, ") ||
		!strings.HasSuffix(bar, "\033[2K\r") {
		t.Fatalf("no progress bar with its total before the summary:\n%q", bar)
	}
}

// The bar shows rows done of the total, the rate and the time left; an estimate that
// was short grows to the rows seen.
func TestProgressBar(t *testing.T) {
	var buf bytes.Buffer
	p := newProgressBar(&buf, 4096, 0)
	p.update(1024)
	if got := buf.String(); !strings.Contains(got, "25% |") || !strings.Contains(got, "(1024/4096, ") ||
		!strings.Contains(got, " rows/s) [") {
		t.Fatalf("progress bar %q", got)
	}
	buf.Reset()
	p.update(5120) // past the estimate: the bar goes on drawing
	if got := buf.String(); !strings.Contains(got, "(5120/5761, ") || strings.Contains(got, "\033[2K") {
		t.Fatalf("past the estimate: %q", got)
	}
	buf.Reset()
	p.update(6000)
	if got := buf.String(); !strings.Contains(got, "(6000/6751, ") {
		t.Fatalf("further past the estimate: %q", got)
	}
	buf.Reset()
	p.finish()
	if got := buf.String(); got != "\033[2K\r" {
		t.Fatalf("finish: %q, want the line cleared", got)
	}
}

// migrate runs `tally migrate`, as an operator does before the other commands.
func migrate(t *testing.T, cfgPath string, genv func(string) string) {
	t.Helper()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"migrate", "--config", cfgPath}, genv, &out, &out); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out.String())
	}
}

// Only serve and migrate migrate: the other commands refuse a database with migrations
// pending and leave it as it was, since a migration may hold the ledger for a while and a
// finance machine's newer binary must not start one. Before, each of them migrated.
func TestCommandsOtherThanServeDoNotMigrate(t *testing.T) {
	cfgPath, err := filepath.Abs("../../tally.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "tally.db")
	db, err := store.Open(context.Background(), "sqlite://"+file, store.Options{}) // an empty database
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	genv := getenv(map[string]string{"TALLY_DATABASE_URL": "sqlite://" + file})
	for _, args := range ledgerCommands(dir) {
		var out bytes.Buffer
		err := run(context.Background(), append(args, "--config", cfgPath), genv, &out, &out)
		if err == nil || !strings.Contains(err.Error(), "migrations pending: run `tally migrate`") {
			t.Errorf("%v on a database not migrated: %v\n%s", args, err, out.String())
		}
	}
	if err := db.Ready(context.Background()); !errors.Is(err, store.ErrNotMigrated) {
		t.Fatalf("after the commands, Ready = %v: they migrated the database", err)
	}
}

// tally check refuses a database migrated by a newer tally, as every other command does:
// as the gate before a rollback it said "config OK; ledger not checked" and exited 0.
func TestCheckRefusesANewerSchema(t *testing.T) {
	cfgPath, err := filepath.Abs("../../tally.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	url := storetest.URL(t, store.Postgres)
	genv := getenv(map[string]string{"TALLY_DATABASE_URL": url})
	migrate(t, cfgPath, genv)
	raw, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`INSERT INTO goose_db_version (version_id, is_applied) VALUES (9999, true)`); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = run(context.Background(), []string{"check", "--config", cfgPath}, genv, &out, &out)
	if !errors.Is(err, store.ErrSchemaNewer) {
		t.Fatalf("check on a newer schema: %v\n%s", err, out.String())
	}
}

// ledgerCommands are the commands that read or write the ledger, other than serve and
// migrate, with their files in dir.
func ledgerCommands(dir string) [][]string {
	return [][]string{
		{"export", "payouts", "--from", "2026-11-01", "--to", "2026-12-01", "--out", filepath.Join(dir, "p.csv")},
		{"settle"},
		{"replay"},
		{"trueup", "show", "--property", "arcade", "--from", "2026-11-01", "--to", "2026-11-02"},
	}
}

// A SQLite file that is not there is named (as an absolute path, since sqlite:// paths
// are relative to the working directory) and not created by the commands other than serve
// and migrate. Before, an export run from another directory made an empty ledger there,
// and after the advised `tally migrate` exported 0 rows with success.
func TestCommandsDoNotCreateASQLiteDatabase(t *testing.T) {
	cfgPath, err := filepath.Abs("../../tally.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "data", "tally.db")
	genv := getenv(map[string]string{"TALLY_DATABASE_URL": "sqlite://" + file})
	for _, args := range ledgerCommands(dir) {
		var out bytes.Buffer
		err := run(context.Background(), append(args, "--config", cfgPath), genv, &out, &out)
		if err == nil || !strings.Contains(err.Error(), "no database at "+file) {
			t.Errorf("%v without a database: %v\n%s", args, err, out.String())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the commands made %s: %v", filepath.Join(dir, "data"), err)
	}
}

// A property's currency and scale are recorded with its ledger (by migrate or serve): a
// config that renames the currency or lowers the scale is refused by every command,
// naming the key, and nothing is run; a finer scale is taken. Before, the balances were
// relabelled, and a fraction below the new scale could never be redeemed.
func TestCommandsRefuseChangedUnits(t *testing.T) {
	example, err := os.ReadFile("../../tally.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, from, to string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.Replace(string(example), from, to, 1)), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cents := write("cents.yaml", "    scale: 0\n", "    scale: 2\n")
	genv := getenv(map[string]string{"TALLY_DATABASE_URL": "sqlite://" + filepath.Join(dir, "tally.db")})
	migrate(t, cents, genv)
	for _, tc := range []struct{ cfg, want string }{
		{write("coins.yaml", "    scale: 0\n", "    scale: 0\n"), "properties[0].scale: 0, but the ledger of arcade holds amounts at scale 2"},
		{write("gems.yaml", "    currency: COIN\n    scale: 0\n", "    currency: GEMS\n    scale: 2\n"), `properties[0].currency: "GEMS", but the ledger of arcade holds COIN`},
	} {
		for _, args := range append(ledgerCommands(dir), []string{"migrate"}) {
			var out bytes.Buffer
			err := run(context.Background(), append(args, "--config", tc.cfg), genv, &out, &out)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v with %s: %v\n%s", args, filepath.Base(tc.cfg), err, out.String())
			}
		}
	}
	// tally check compares too, where the database answers: it said "config OK" to a
	// config every other command refuses.
	for _, tc := range []struct{ cfg, want string }{
		{cents, "the ledger's currencies and scales match"},
		{filepath.Join(dir, "gems.yaml"), ""},
	} {
		var out bytes.Buffer
		err := run(context.Background(), []string{"check", "--config", tc.cfg}, genv, &out, &out)
		if (tc.want == "") != (err != nil) || !strings.Contains(out.String(), tc.want) {
			t.Errorf("check %s: %v\n%s", filepath.Base(tc.cfg), err, out.String())
		}
	}
	var missing bytes.Buffer
	nowhere := getenv(map[string]string{"TALLY_DATABASE_URL": "sqlite://" + filepath.Join(dir, "none.db")})
	if err := run(context.Background(), []string{"check", "--config", cents}, nowhere, &missing, &missing); err != nil ||
		!strings.Contains(missing.String(), "config OK; ledger not checked: ") {
		t.Errorf("check without a database: %v\n%s", err, missing.String())
	}
	// A finer scale fits every amount: taken, and recorded by migrate. Until then the
	// other commands refuse it: settle moved fractions the servers' config, at the
	// recorded scale, could never redeem.
	mills := write("mills.yaml", "    scale: 0\n", "    scale: 3\n")
	for _, args := range ledgerCommands(dir) {
		var out bytes.Buffer
		err := run(context.Background(), append(args, "--config", mills), genv, &out, &out)
		if err == nil || !strings.Contains(err.Error(), "properties[0].scale: 3, but the ledger of arcade is at scale 2") {
			t.Errorf("%v at a finer scale not recorded: %v\n%s", args, err, out.String())
		}
	}
	migrate(t, mills, genv)
	var out bytes.Buffer
	if err := run(context.Background(), []string{"settle", "--config", cents}, genv, &out, &out); err == nil ||
		!strings.Contains(err.Error(), "properties[0].scale: 2, but the ledger of arcade holds amounts at scale 3") {
		t.Fatalf("settle at scale 2 after scale 3 was recorded: %v", err)
	}
	if err := run(context.Background(), []string{"settle", "--config", mills}, genv, &out, &out); err != nil {
		t.Fatalf("settle at the recorded scale: %v\n%s", err, out.String())
	}
}
