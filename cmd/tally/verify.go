package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"tally/store"
)

// cmdVerify: tally verify [--property P] [--config F] — check the ledger's invariants
// (store.CheckInvariants): every journal entry balances, every wallet agrees with its
// legs, every row points at something, settlement runs and true-ups agree with the
// ledger. It reads the whole ledger of the property (all of them by default) in one
// read-only snapshot on the primary, and exits 1 naming what is wrong.
func cmdVerify(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, path := flags("verify", stderr)
	property := fs.String("property", "", "only this property (default: every property)")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*path, getenv)
	if err != nil {
		return err
	}
	if *property != "" {
		if _, ok := cfg.Property(*property); !ok {
			return fmt.Errorf("verify: unknown property %q: not in the config", *property)
		}
	}
	db, err := openStore(ctx, cfg, true, false, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Ready(ctx); err != nil {
		if errors.Is(err, store.ErrNotMigrated) {
			return fmt.Errorf("verify: %w", errMigrationsPending)
		}
		return err
	}
	if err := db.CheckInvariants(ctx, *property); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	what := "every property"
	if *property != "" {
		what = *property
	}
	fmt.Fprintf(stdout, "ledger of %s: every invariant holds\n", what)
	return nil
}
