package app

// SetReplayAllBatch makes one console "replay all" take n events, until the returned
// function restores the batch.
func SetReplayAllBatch(n int) (restore func()) {
	was := replayAllBatch
	replayAllBatch = n
	return func() { replayAllBatch = was }
}
