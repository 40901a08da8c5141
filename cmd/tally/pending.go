package main

import (
	"context"
	"errors"
	"io"
	"log/slog"

	"tally/app"
	"tally/config"
	"tally/store"
)

func startSchedule(ctx context.Context, a *app.App, db *store.DB, cfg config.Config, log *slog.Logger) (func(), error) {
	return func() {}, nil
}

func cmdSettle(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return errors.New("settle: not implemented yet")
}

func cmdExport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return errors.New("export: not implemented yet")
}
