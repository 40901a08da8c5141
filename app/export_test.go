package app

import (
	"context"
	"time"

	"github.com/robfig/cron/v3"
)

// SetReplayAllBatch makes one console "replay all" take n events, until the returned
// function restores the batch.
func SetReplayAllBatch(n int) (restore func()) {
	was := replayAllBatch
	replayAllBatch = n
	return func() { replayAllBatch = was }
}

// HoldReportStreams takes every payout report slot of a, as that many downloads that
// stalled would, until the returned function gives them back.
func HoldReportStreams(a *App) (release func()) {
	for range cap(a.streams) {
		a.streams <- struct{}{}
	}
	return func() {
		for range cap(a.streams) {
			<-a.streams
		}
	}
}

// SetDrainTimeout makes Serve's drain at shutdown last d, until the returned function
// restores it.
func SetDrainTimeout(d time.Duration) (restore func()) {
	was := drainTimeout
	drainTimeout = d
	return func() { drainTimeout = was }
}

// SettleJob runs one scheduled sweep of every property on spec, as a tick does.
func SettleJob(ctx context.Context, a *App, spec string) error {
	sched, err := cron.ParseStandard(spec)
	if err != nil {
		return err
	}
	a.settleJob(ctx, sched, a.log)
	return nil
}

// RequestHash is the hash a redemption or adjustment records of its request.
func RequestHash(parts ...string) string { return requestHash(parts...) }

// SetUnparkEvery makes a's webhook workers sweep for parked first messages every d.
// Call it before RunWebhooks.
func SetUnparkEvery(a *App, d time.Duration) { a.webhooks.unparkEvery = d }
