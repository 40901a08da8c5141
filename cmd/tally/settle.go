package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"tally/app"
	"tally/config"
	"tally/rewards"
	"tally/store"
)

// startSchedule runs the settlement schedule of cfg for serve until the returned stop,
// which waits for a run in progress. Cancelling ctx interrupts a run between batches.
func startSchedule(ctx context.Context, a *app.App, _ *store.DB, cfg config.Config, log *slog.Logger) (func(), error) {
	stop, err := a.StartSettlement(ctx, cfg.Settlement.Schedule)
	if err != nil {
		return nil, fmt.Errorf("settlement.schedule: %w", err)
	}
	log.Info("settlement scheduled", "schedule", cfg.Settlement.Schedule)
	return stop, nil
}

// cmdSettle: tally settle [--config F] [--property P] — one settlement run now, one line
// per property. Another process settling a property is reported, not a failure.
func cmdSettle(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, path := flags("settle", stderr)
	property := fs.String("property", "", "only this property (default: every configured property)")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, _, a, done, err := openApp(ctx, *path, getenv, newLogger(io.Discard))
	if err != nil {
		return err
	}
	defer done()
	runs, err := a.Settle(ctx, *property, config.CLIActor)
	currency := map[string]string{}
	for _, p := range cfg.Properties {
		currency[p.ID] = p.Currency
	}
	for _, r := range runs {
		fmt.Fprintln(stdout, settleLine(r, currency[r.Property]))
	}
	return err
}

// settleLine describes one run, e.g.
// "arcade: run 7 completed in 12ms: 3 users, 5 entries, 120 COIN moved".
func settleLine(r rewards.SettlementRun, currency string) string {
	switch {
	case r.ID == 0 && r.Status == rewards.RunCompleted:
		// Only a scheduled run (no actor) leaves no row; `tally settle` always records
		// its run, so this is for a caller that settles without one.
		return r.Property + ": nothing matured (no run recorded)"
	case r.ID == 0:
		return fmt.Sprintf("%s: %s: %s", r.Property, r.Status, r.Error)
	}
	line := fmt.Sprintf("%s: run %d %s in %s: %d users, %d entries, %s %s moved", r.Property, r.ID, r.Status,
		r.FinishedAt.Sub(r.StartedAt).Round(time.Millisecond), r.Users, r.Entries, r.Amount, currency)
	if r.Error != "" {
		line += ": " + r.Error
	}
	return line
}
