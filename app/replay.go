package app

import (
	"context"
	"fmt"
	"time"

	"tally/rewards"
)

// ReplayReport counts what a replay did.
type ReplayReport struct {
	Seen        int // kept events looked at
	Applied     int // now applied
	Quarantined int // still quarantined (reason updated)
	Skipped     int // applied meanwhile by another replay
	// Failed are the events that could not be applied even alone (the database refused
	// their data, or the rules panicked): they stay quarantined as they were, and the
	// replay goes on with the others and then returns an error naming them.
	Failed []int64
	// firstFailure is the error of Failed[0].
	firstFailure error
}

// failedErr is the error a replay returns when events failed alone, naming them.
func (r ReplayReport) failedErr() error {
	if len(r.Failed) == 0 {
		return nil
	}
	return fmt.Errorf("replay: %d events could not be applied and stay quarantined (ids %v); the first: %w",
		len(r.Failed), r.Failed, r.firstFailure)
}

// replayBatch is how many quarantined events one replay transaction takes.
const replayBatch = 200

// Replay re-applies kept events of the given status (quarantined) with the current
// config, oldest first; property "" means every property this config has, one after
// the other. It goes through the applier's own path (the store's claim, decide, apply
// and mark in one transaction), so each event is applied at most once even if replays
// and appliers overlap. Events of a property this config does not have are left as
// they are: a machine whose config lists fewer properties than the servers' (finance's,
// say) wrote "not configured" over their reasons. An unknown property is
// ErrUnknownProperty. Each event replayed is recorded in the audit log as replayed by
// actor, in the same transaction.
func (a *App) Replay(ctx context.Context, status, property, actor string, progress func(rewards.Applied)) (ReplayReport, error) {
	var rep ReplayReport
	if status != rewards.StatusQuarantined {
		return rep, invalid("status", "only quarantined events can be replayed")
	}
	if property != "" {
		if _, err := a.property(property); err != nil {
			return rep, err
		}
	}
	if actor == "" {
		return rep, ErrUnauthorized
	}
	for _, p := range a.propertyIDsOr(property) {
		one, err := a.replayAll(ctx, rewards.Claim{Status: rewards.StatusQuarantined, Property: p, Actor: actor}, progress)
		rep.Seen += one.Seen
		rep.Applied += one.Applied
		rep.Quarantined += one.Quarantined
		rep.Skipped += one.Skipped
		if rep.firstFailure == nil {
			rep.firstFailure = one.firstFailure
		}
		rep.Failed = append(rep.Failed, one.Failed...)
		if err != nil {
			return rep, err // the database's failure, not an event's
		}
	}
	return rep, rep.failedErr()
}

// replayAll replays the quarantined events claim c selects (its Status, Property,
// Reason and Actor), oldest first, replayBatch at a time, going on past an event that
// fails on its own (rep.Failed; the error is the database's failure, which stops it);
// see Replay.
func (a *App) replayAll(ctx context.Context, c rewards.Claim, progress func(rewards.Applied)) (ReplayReport, error) {
	var rep ReplayReport
	count := func(got []rewards.Applied) {
		for _, g := range got {
			rep.Seen++
			if g.Status == rewards.StatusApplied {
				rep.Applied++
			} else {
				rep.Quarantined++
			}
			if progress != nil {
				progress(g)
			}
		}
	}
	c.IDs, c.AfterID, c.Limit = nil, 0, replayBatch
	for {
		got, claimed, err := a.applier.apply(ctx, c)
		claimed = uniqueIDs(claimed)
		switch {
		case err != nil && (len(claimed) == 0 || ctx.Err() != nil || !eventsFault(err)):
			return rep, err // the database's failure, not an event's: nothing changed
		case err != nil:
			// One event the database refuses must not hold up the others (the applier
			// splits its batches for the same reason): each on its own.
			for _, id := range claimed {
				c.AfterID = max(c.AfterID, id)
				alone := c
				alone.IDs, alone.AfterID, alone.Limit = []int64{id}, 0, 1
				one, _, err := a.applier.apply(ctx, alone)
				if err != nil {
					if ctx.Err() != nil || !eventsFault(err) {
						return rep, err
					}
					a.logFor(ctx).Error("replay: event failed on its own; it stays quarantined", "event_id", id, "err", err)
					rep.Seen++
					rep.Failed = append(rep.Failed, id)
					if rep.firstFailure == nil {
						rep.firstFailure = err
					}
					continue
				}
				count(one)
			}
			continue
		case len(claimed) == 0:
			return rep, nil
		}
		for _, g := range got {
			c.AfterID = max(c.AfterID, g.ID)
		}
		count(got)
	}
}

// ReplayFailedError is a replayed event whose effects the database refused again (or
// whose rules panicked): it stays quarantined as it was. It wraps the failure.
type ReplayFailedError struct {
	ID  int64
	err error
}

func (e *ReplayFailedError) Error() string {
	return fmt.Sprintf("replay of event %d failed; it stays quarantined: %v", e.ID, e.err)
}

func (e *ReplayFailedError) Unwrap() error { return e.err }

// ReplayEvent re-applies one quarantined event, exactly once however many replays of it
// run at once, and returns it as it is now. An event that is not quarantined is left
// alone (replayed=false); an unknown one is rewards.ErrNotFound. A replay is recorded in
// the audit log as actor's, in the same transaction; a request that changed nothing is not.
func (a *App) ReplayEvent(ctx context.Context, id int64, actor string) (ev rewards.Kept, posted []rewards.Posted, replayed bool, err error) {
	if actor == "" {
		return rewards.Kept{}, nil, false, ErrUnauthorized
	}
	got, _, err := a.applier.apply(ctx, rewards.Claim{Status: rewards.StatusQuarantined, IDs: []int64{id}, Limit: 1, Actor: actor})
	if err != nil {
		if ctx.Err() == nil && eventsFault(err) {
			err = &ReplayFailedError{ID: id, err: err}
		}
		return rewards.Kept{}, nil, false, err
	}
	replayed = len(got) == 1
	// The replay has committed: read it back even if the request's time ran out waiting
	// for it (its answer was a 503 "nothing was saved"). Should the read fail anyway,
	// the answer must not say nothing was saved.
	read, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	ev, posted, err = a.store.Event(read, id)
	if err != nil && replayed {
		err = fmt.Errorf("%w: event %d was replayed, then could not be read: %w", rewards.ErrOutcomeUnknown, id, err)
	}
	return ev, posted, replayed, err
}

// EventReader reads the inbox for operators.
type EventReader interface {
	Event(ctx context.Context, id int64) (rewards.Kept, []rewards.Posted, error)
	Events(ctx context.Context, f rewards.EventFilter) ([]rewards.Kept, error)
}

func eventIDParam(s string) (int64, error) {
	id, ok := positiveID(s)
	if !ok {
		return 0, invalid("id", "must be an event id: a positive integer")
	}
	return id, nil
}
