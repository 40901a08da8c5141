package app

import "time"

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
