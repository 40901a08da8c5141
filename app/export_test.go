package app

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
