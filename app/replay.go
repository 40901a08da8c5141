package app

import (
	"context"
	"errors"

	"tally/rewards"
)

// Replayer reads kept inbox events and re-applies them.
type Replayer interface {
	Kept(ctx context.Context, status, property string, afterID int64, limit int) ([]rewards.Kept, error)
	Reapply(ctx context.Context, id int64, in rewards.Inbound) (rewards.Receipt, error)
}

// ReplayReport counts what a replay did.
type ReplayReport struct {
	Seen        int // kept events looked at
	Applied     int // now applied
	Quarantined int // still quarantined (reason updated)
	Skipped     int // applied meanwhile by another replay
}

// Replay re-applies kept events of the given status (quarantined) with the current
// config, oldest first; property "" means all. Each event is applied at most once even
// if replays overlap; events of properties no longer configured stay quarantined.
func (a *App) Replay(ctx context.Context, st Replayer, status, property string, progress func(rewards.Kept, rewards.Receipt)) (ReplayReport, error) {
	var rep ReplayReport
	if status != rewards.StatusQuarantined {
		return rep, invalid("status", "only quarantined events can be replayed")
	}
	var after int64
	for {
		kept, err := st.Kept(ctx, status, property, after, 200)
		if err != nil {
			return rep, err
		}
		if len(kept) == 0 {
			return rep, nil
		}
		for _, k := range kept {
			after = k.ID
			rep.Seen++
			in := a.inbound(k.Property, k.Event, nil)
			r, err := st.Reapply(ctx, k.ID, in)
			if err != nil && !errors.Is(err, rewards.ErrNotFound) {
				return rep, err
			}
			switch {
			case r.Duplicate:
				rep.Skipped++
			case r.Status == rewards.StatusQuarantined:
				rep.Quarantined++
			default:
				rep.Applied++
			}
			if progress != nil {
				progress(k, r)
			}
		}
	}
}
