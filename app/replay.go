package app

import (
	"context"
	"errors"

	"tally/postbacks"
	"tally/rewards"
)

// Replayer reads kept inbox events and re-applies them.
type Replayer interface {
	Kept(ctx context.Context, status, property string, afterID int64, limit int) ([]rewards.Kept, error)
	Reapply(ctx context.Context, id int64, in rewards.Inbound) (rewards.Receipt, error)
}

// reinbound prepares a kept event for another try. Its raw body was authenticated when
// it was received, so it is decoded again by the current parsers: an event kept because
// its payload shape was not understood is applied once the parser understands it. A body
// the current parser refuses keeps the event decoded at receipt.
func (a *App) reinbound(k rewards.Kept) rewards.Inbound {
	ev, quarantine := k.Event, ""
	if len(k.Raw) > 0 {
		fresh, err := postbacks.Decode(k.Event.Source, k.Raw)
		var unmapped *postbacks.UnmappedError
		switch {
		case err == nil:
			ev = fresh
		case errors.As(err, &unmapped):
			ev, quarantine = unmapped.Event, unmapped.Error()
		}
	}
	in := a.inbound(k.Property, ev, nil)
	if in.Quarantine == "" {
		in.Quarantine = quarantine
	}
	return in
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
			r, err := st.Reapply(ctx, k.ID, a.reinbound(k))
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
