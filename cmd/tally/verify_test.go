package main

import (
	"bytes"
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"tally/store"
	"tally/store/storetest"
)

// tally verify says the ledger holds its invariants, and exits 1 naming what is wrong
// once it does not (an entry without its journal row, which Postgres no longer refuses).
func TestVerifyCommand(t *testing.T) {
	cfg, err := filepath.Abs("../../tally.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	url := storetest.URL(t, store.Postgres)
	exportFixture(t, url)
	genv := getenv(map[string]string{"TALLY_DATABASE_URL": url})
	verify := func(args ...string) (string, error) {
		var out, errs bytes.Buffer
		err := run(context.Background(), append([]string{"verify", "--config", cfg}, args...), genv, &out, &errs)
		return out.String(), err
	}
	if out, err := verify(); err != nil || out != "ledger of every property: every invariant holds\n" {
		t.Fatalf("a sound ledger: %q, %v", out, err)
	}
	if out, err := verify("--property", "arcade"); err != nil || !strings.Contains(out, "ledger of arcade") {
		t.Fatalf("one property: %q, %v", out, err)
	}
	if _, err := verify("--property", "nope"); err == nil || !strings.Contains(err.Error(), `unknown property "nope"`) {
		t.Fatalf("an unknown property: %v", err)
	}
	raw, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`INSERT INTO entries (journal_id, property, user_id, account, bucket, kind, amount, created_at)
		VALUES (987654, 'arcade', 'sub1', '@x', '', 'mystery', 0, '2026-11-03T00:00:00Z')`); err != nil {
		t.Fatal(err)
	}
	if out, err := verify(); err == nil || out != "" || !strings.Contains(err.Error(), "journal row is missing") {
		t.Fatalf("a corrupt ledger: %q, %v", out, err)
	}
}
