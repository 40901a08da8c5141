package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// ShutdownTimeout bounds how long in-flight requests get to finish on shutdown.
const ShutdownTimeout = 30 * time.Second

// drainTimeout is ShutdownTimeout; tests shorten it.
var drainTimeout = ShutdownTimeout

// serverWriteTimeout bounds writing an answer; routes that may work longer move it
// (boundedFor, the payout report).
const serverWriteTimeout = 60 * time.Second

// Serve serves h on ln until ctx ends, then stops accepting, lets in-flight requests
// finish (bounded by ShutdownTimeout) and returns.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      serverWriteTimeout,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: draining in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		// Requests still running (a download its client stopped reading, a handler
		// waiting on the database) are cut: say so, and close their connections rather
		// than leave them to the process's exit.
		log.Warn("shutting down: requests still in flight after the drain; closing their connections", "drain", drainTimeout.String(), "err", err)
		_ = srv.Close()
		err = fmt.Errorf("shutdown: requests still in flight after %s were cut: %w", drainTimeout, err)
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	return err
}
