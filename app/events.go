package app

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"tally/rewards"
)

type legJSON struct {
	Account string `json:"account"` // "" for the user's wallet, else a system account
	Bucket  string `json:"bucket,omitempty"`
	Amount  string `json:"amount"`
}

type postedJSON struct {
	ID          string    `json:"id"`
	User        string    `json:"user"` // the wallet its user legs post to
	Kind        string    `json:"kind"`
	Rule        string    `json:"rule"`
	RuleVersion string    `json:"rule_version,omitempty"`
	Ref         string    `json:"ref"`
	CreatedAt   time.Time `json:"created_at"`
	Legs        []legJSON `json:"legs"`
}

type eventJSON struct {
	ID         string       `json:"id"`
	Property   string       `json:"property"`
	Source     string       `json:"source"`
	DedupeKey  string       `json:"dedupe_key"`
	User       string       `json:"user"`
	Type       string       `json:"type"`
	Status     string       `json:"status"`
	Reason     string       `json:"reason"`
	ReceivedAt time.Time    `json:"received_at"`
	AppliedAt  *time.Time   `json:"applied_at"`
	Entries    []postedJSON `json:"entries,omitzero"` // [] on one event with none; absent in lists
}

func toEventJSON(k rewards.Kept, posted []rewards.Posted) eventJSON {
	out := eventJSON{ID: strconv.FormatInt(k.ID, 10), Property: k.Property, Source: string(k.Source), DedupeKey: k.DedupeKey,
		User: k.User, Type: k.Event.Type, Status: k.Status, Reason: k.Reason, ReceivedAt: k.ReceivedAt, AppliedAt: k.AppliedAt}
	if posted != nil {
		out.Entries = make([]postedJSON, 0, len(posted))
	}
	for _, p := range posted {
		pj := postedJSON{ID: strconv.FormatInt(p.ID, 10), User: p.User, Kind: string(p.Kind), Rule: p.Rule, RuleVersion: p.RuleVersion, Ref: p.Ref,
			CreatedAt: p.CreatedAt}
		for _, l := range p.Legs {
			pj.Legs = append(pj.Legs, legJSON{Account: l.System, Bucket: string(l.Bucket), Amount: amount(l.Amount)})
		}
		out.Entries = append(out.Entries, pj)
	}
	return out
}

// listEvents: GET /v1/admin/events?status=&property=&source=&limit=&cursor=
func (a *App) listEvents(c *gin.Context) {
	f := rewards.EventFilter{Status: c.Query("status"), Property: c.Query("property"), Source: rewards.Source(c.Query("source"))}
	switch f.Status {
	case "", rewards.StatusRecorded, rewards.StatusApplied, rewards.StatusQuarantined:
	default:
		a.fail(c, invalid("status", "must be recorded, applied or quarantined"))
		return
	}
	if f.Source != "" && !f.Source.Valid() {
		a.fail(c, invalid("source", "must be gamezop_spp, gamezop_scores, gamepush or trackscore"))
		return
	}
	// A property no longer configured may still have events, so any well-formed id is
	// taken; one that cannot be a property's (bytes Postgres refuses: a 500) is a 400.
	if f.Property != "" && !propertyIDForm(f.Property) {
		a.fail(c, invalid("property", "must be a property id: 1 to 64 characters of a-z, 0-9 and -"))
		return
	}
	limit, err := limitParam(c, 100, 1000)
	if err != nil {
		a.fail(c, err)
		return
	}
	if cur := c.Query("cursor"); cur != "" {
		if f.Before, err = eventIDParam(cur); err != nil {
			a.fail(c, invalid("cursor", "not a cursor returned by this API"))
			return
		}
	}
	f.Limit = limit + 1
	kept, err := a.store.Events(c.Request.Context(), f)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, toListPage(kept, limit, func(k rewards.Kept) int64 { return k.ID },
		func(k rewards.Kept) eventJSON { return toEventJSON(k, nil) }))
}

// getEvent: GET /v1/admin/events/:id
func (a *App) getEvent(c *gin.Context) {
	id, err := eventIDParam(c.Param("id"))
	if err != nil {
		a.fail(c, err)
		return
	}
	k, posted, err := a.store.Event(c.Request.Context(), id)
	if err != nil {
		a.fail(c, err)
		return
	}
	if posted == nil {
		posted = []rewards.Posted{}
	}
	c.JSON(http.StatusOK, toEventJSON(k, posted))
}

// replayEvent: POST /v1/admin/events/:id/replay. Replaying an event that is not
// quarantined (applied by an earlier replay, say) changes nothing: replayed is false.
func (a *App) replayEvent(c *gin.Context) {
	id, err := eventIDParam(c.Param("id"))
	if err != nil {
		a.fail(c, err)
		return
	}
	k, posted, replayed, err := a.ReplayEvent(c.Request.Context(), id, actor(c))
	if err != nil {
		a.fail(c, err)
		return
	}
	if posted == nil {
		posted = []rewards.Posted{}
	}
	c.JSON(http.StatusOK, gin.H{"replayed": replayed, "event": toEventJSON(k, posted)})
}

// propertyIDForm says whether s has the form the config gives property ids.
func propertyIDForm(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, r := range []byte(s) {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return false
		}
	}
	return true
}
