package main

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"tally/rewards"
	"tally/store"
	"tally/store/storetest"
)

// TestSettleCommand runs `tally settle` against a fresh database holding one matured
// pending credit of 2.5 COIN (scale 0): it moves 2 and leaves 0.5 pending.
func TestSettleCommand(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		cfg, err := filepath.Abs("../../tally.example.yaml")
		if err != nil {
			t.Fatal(err)
		}
		u := storetest.URL(t, d)
		db := storetest.OpenURL(t, u, nil)
		ctx := context.Background()
		_, _, err = db.Adjust(ctx, rewards.AdjustRequest{Actor: "test", Property: "arcade", User: "u1", Amount: decimal.RequireFromString("2.5"),
			Bucket: rewards.Pending, Reason: "seed", IdempotencyKey: "seed", RequestHash: "seed"})
		if err != nil {
			t.Fatal(err)
		}
		genv := getenv(map[string]string{"TALLY_DATABASE_URL": u})
		settle := func(args ...string) (string, error) {
			var out, errb bytes.Buffer
			err := run(ctx, append([]string{"settle", "--config", cfg}, args...), genv, &out, &errb)
			return out.String(), err
		}

		out, err := settle()
		if err != nil {
			t.Fatalf("settle: %v\n%s", err, out)
		}
		if !regexp.MustCompile(`^arcade: run \d+ completed in [0-9.]+[mµn]?s: 1 users, 1 entries, 2 COIN moved\n$`).MatchString(out) {
			t.Fatalf("settle printed %q", out)
		}
		b, err := db.Balance(ctx, "arcade", "u1")
		if err != nil || !b.Available.Equal(decimal.NewFromInt(2)) || !b.Pending.Equal(decimal.RequireFromString("0.5")) {
			t.Fatalf("balance after settle: %+v %v", b, err)
		}

		// Asked for by hand, a run is recorded (and audited) even when nothing matured.
		out, err = settle("--property", "arcade")
		if err != nil || !regexp.MustCompile(`^arcade: run \d+ completed in [0-9.]+[mµn]?s: 0 users, 0 entries, 0 COIN moved\n$`).MatchString(out) {
			t.Fatalf("second settle: %v %q", err, out)
		}
		audit, err := db.Audit(ctx, rewards.AuditFilter{Limit: 10})
		if err != nil || len(audit) != 3 { // the seed's adjustment, then the two runs
			t.Fatalf("audit after two settles by hand: %+v %v", audit, err)
		}
		for _, a := range audit[:2] {
			if a.Actor != "cli" || a.Action != rewards.AuditSettlement || a.Property != "arcade" || !strings.HasPrefix(a.Target, "settlement:") {
				t.Fatalf("audit entry of a settle by hand: %+v", a)
			}
		}
		if audit[0].Target == audit[1].Target {
			t.Fatalf("two runs audited as one: %+v", audit[:2])
		}
		if out, err := settle("--property", "nope"); err == nil || !strings.Contains(err.Error(), "unknown property") || out != "" {
			t.Fatalf("settle of an unknown property: %v %q", err, out)
		}
		if _, err := settle("extra"); err == nil {
			t.Fatal("settle accepted a stray argument")
		}
		if err := db.CheckInvariants(ctx, ""); err != nil {
			t.Fatal(err)
		}
	})
}
