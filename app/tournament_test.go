package app_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/robfig/cron/v3"

	"tally/rewards"
	"tally/store"
	"tally/store/storetest"
)

// snakeWeekly is the example: Mondays 00:00 UTC, a week long, 15 minutes' grace.
func snakeWeekly(t *testing.T) rewards.Tournament {
	t.Helper()
	sched, err := cron.ParseStandard("0 0 * * 1")
	if err != nil {
		t.Fatal(err)
	}
	return rewards.Tournament{ID: "snake-weekly", Version: "w1", Game: "NyM_JGWcx", Direction: rewards.Higher, States: []string{"over"},
		Next: func(at time.Time) time.Time { return sched.Next(at.UTC()) }, Duration: 168 * time.Hour, Grace: 15 * time.Minute,
		Prizes: []rewards.Prize{{From: 1, To: 1, Amount: dec("1000")}, {From: 2, To: 3, Amount: dec("400")}, {From: 4, To: 10, Amount: dec("50")}},
		Ties:   rewards.TiesSplit, MinPlays: 1}
}

var (
	week    = time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC) // a Monday
	weekEnd = week.Add(168 * time.Hour)
)

// postScore sends a Gamezop score made at made (the provider's timestamp).
func postScore(t *testing.T, e *env, user, play string, score int, state string, made time.Time) string {
	t.Helper()
	body := fmt.Sprintf(`{"gameCode":"NyM_JGWcx","sessionId":"s-%s","gamePlayId":"%s","timestamp":%d,"score":%d,"subId":"%s","state":"%s"}`,
		play, play, made.Unix(), score, user, state)
	a := e.do("POST", "/v1/hooks/arcade/gamezop/scores", body, "api-key", scoresKey)
	if a.Code != 200 {
		t.Fatalf("score: %d %s", a.Code, a.Raw)
	}
	id, _ := a.Body["event_id"].(string)
	return id
}

func pub(e *env, path string) answer {
	return e.do("GET", path, "", "Authorization", "Bearer "+apiKey)
}

func rowsLine(a answer) string {
	rows, _ := a.Body["data"].([]any)
	parts := make([]string, len(rows))
	for i, r := range rows {
		m := r.(map[string]any)
		parts[i] = fmt.Sprintf("%v:%v:%v", m["rank"], m["user"], m["score"])
		if p, ok := m["prize"]; ok {
			parts[i] += fmt.Sprintf("=%v", p)
		}
	}
	return strings.Join(parts, " ")
}

// A weekly tournament end to end over HTTP: live leaderboard, the close at end + grace
// by the closer, prizes paid once through the wallet, the closed window showing them,
// and a late score recorded with its reason.
func TestTournamentWeeklyOverHTTP(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		base := newEnv(t, d)
		e := base.withProperty(snakeOnly(t, nil)) // every credit here is a prize
		e.clock.Set(week.Add(50 * time.Hour))     // Wednesday 02:00

		list := pub(e, "/v1/properties/arcade/tournaments")
		data, _ := list.Body["data"].([]any)
		if list.Code != 200 || len(data) != 1 {
			t.Fatalf("list: %d %s", list.Code, list.Raw)
		}
		cw := data[0].(map[string]any)["current_window"].(map[string]any)
		if cw["state"] != "open" || cw["start"] != "2026-11-23T00:00:00Z" || cw["closes_at"] != "2026-11-30T00:15:00Z" {
			t.Fatalf("current window %v", cw)
		}

		postScore(t, e, "ann", "a1", 300, "over", week.Add(time.Hour))
		postScore(t, e, "bob", "b1", 500, "over", week.Add(2*time.Hour))
		postScore(t, e, "cat", "c1", 500, "over", week.Add(3*time.Hour))
		postScore(t, e, "dan", "d1", 100, "over", week.Add(4*time.Hour))
		postScore(t, e, "eve", "e1", 900, "start", week.Add(4*time.Hour)) // start never counts
		postScore(t, e, "ann", "a2", 450, "over", week.Add(49*time.Hour))

		lb := pub(e, "/v1/properties/arcade/tournaments/snake-weekly/leaderboard?limit=2&user=dan")
		if lb.Code != 200 || rowsLine(lb) != "1:bob:500 1:cat:500" {
			t.Fatalf("leaderboard: %d %s", lb.Code, lb.Raw)
		}
		if me := lb.Body["user_row"].(map[string]any); me["rank"] != float64(4) || me["user"] != "dan" {
			t.Fatalf("dan's row %v", me)
		}
		next := pub(e, "/v1/properties/arcade/tournaments/snake-weekly/leaderboard?limit=2&cursor="+lb.Body["next_cursor"].(string))
		if rowsLine(next) != "3:ann:450 4:dan:100" || next.Body["next_cursor"] != nil {
			t.Fatalf("second page: %s", next.Raw)
		}

		// In the grace period a score made before the end still counts; the closer waits.
		e.clock.Set(weekEnd.Add(10 * time.Minute))
		postScore(t, e, "dan", "d2", 600, "over", weekEnd.Add(-time.Minute))
		if res, err := e.app.CloseTournaments(context.Background()); err != nil || len(res) != 0 {
			t.Fatalf("closer inside the grace: %+v, %v", res, err)
		}
		// At end + grace the closer still leaves a margin for receipts being committed.
		e.clock.Set(weekEnd.Add(15 * time.Minute))
		if res, err := e.app.CloseTournaments(context.Background()); err != nil || len(res) != 0 {
			t.Fatalf("closer at end + grace: %+v, %v", res, err)
		}
		e.clock.Set(weekEnd.Add(15*time.Minute + 10*time.Second))
		res, err := e.app.CloseTournaments(context.Background())
		if err != nil || len(res) != 1 || res[0].Outcome != rewards.CloseDone {
			t.Fatalf("closer: %+v, %v", res, err)
		}
		// dan 1st: 1000; bob and cat tied 2nd: (400 + 400) / 2; ann 4th: 50.
		for user, want := range map[string]string{"dan": "1000", "bob": "400", "cat": "400", "ann": "50", "eve": "0"} {
			b := pub(e, "/v1/properties/arcade/users/"+user+"/balance")
			if b.Body["pending"] != want {
				t.Fatalf("%s pending %v, want %s", user, b.Body["pending"], want)
			}
		}
		tx := pub(e, "/v1/properties/arcade/users/dan/transactions")
		entry := tx.Body["data"].([]any)[0].(map[string]any)
		if entry["kind"] != "prize" || entry["ref"] != "tournament:snake-weekly/2026-11-23T00:00:00Z/rank:1" || entry["amount"] != "1000" {
			t.Fatalf("dan's prize entry %v", entry)
		}
		// The closer runs again (another replica, the next tick): nothing more.
		if res, err := e.app.CloseTournaments(context.Background()); err != nil || len(res) != 0 {
			t.Fatalf("second run: %+v, %v", res, err)
		}

		closed := pub(e, "/v1/properties/arcade/tournaments/snake-weekly/leaderboard?window=2026-11-23T00:00:00Z")
		w := closed.Body["window"].(map[string]any)
		if rowsLine(closed) != "1:dan:600=1000 2:bob:500=400 2:cat:500=400 4:ann:450=50" || w["state"] != "closed" || w["paid"] != "1850" {
			t.Fatalf("closed window: %s", closed.Raw)
		}
		// The config changes after the close (schedule, ties, min_plays, prizes): the
		// closed window still answers, as it closed.
		changed := base.withProperty(snakeOnly(t, func(ct *rewards.Tournament) {
			sched, err := cron.ParseStandard("0 0 * * 2")
			if err != nil {
				t.Fatal(err)
			}
			ct.Next = func(at time.Time) time.Time { return sched.Next(at.UTC()) }
			ct.Ties, ct.MinPlays, ct.Prizes = rewards.TiesFirst, 3, []rewards.Prize{{From: 1, To: 10, Amount: dec("1")}}
		}))
		again := pub(changed, "/v1/properties/arcade/tournaments/snake-weekly/leaderboard?window=2026-11-23T00:00:00Z&user=bob")
		aw, _ := again.Body["window"].(map[string]any)
		if again.Code != 200 || rowsLine(again) != rowsLine(closed) || aw["state"] != "closed" || aw["end"] != "2026-11-30T00:00:00Z" || aw["paid"] != "1850" {
			t.Fatalf("the closed window after a config change: %s", again.Raw)
		}
		if me := again.Body["user_row"].(map[string]any); me["rank"] != float64(2) || me["prize"] != "400" {
			t.Fatalf("bob's row after a config change: %v", me)
		}
		if none := pub(changed, "/v1/properties/arcade/tournaments/snake-weekly/leaderboard?window=2026-11-16T00:00:00Z"); none.Code != 400 {
			t.Fatalf("a start of neither schedule nor record: %s", none.Raw)
		}

		// A past window in which nothing counted never closed: it ended, with nothing to pay.
		empty := pub(e, "/v1/properties/arcade/tournaments/snake-weekly/leaderboard?window=2026-11-16T00:00:00Z")
		if ew := empty.Body["window"].(map[string]any); ew["state"] != "ended" || ew["closed_at"] != nil || rowsLine(empty) != "" {
			t.Fatalf("an empty past window: %s", empty.Raw)
		}
		cur := pub(e, "/v1/properties/arcade/tournaments/snake-weekly/leaderboard")
		if cur.Body["window"].(map[string]any)["start"] != "2026-11-30T00:00:00Z" || rowsLine(cur) != "" {
			t.Fatalf("current window after the close: %s", cur.Raw)
		}

		// Late: made in the closed window, received after end + grace: recorded, not counted.
		id := postScore(t, e, "eve", "e2", 9999, "over", weekEnd.Add(-time.Minute))
		ev := e.event(id)
		if reason, _ := ev.Body["reason"].(string); !strings.Contains(reason, "received late, not counted") || ev.Body["status"] != "applied" {
			t.Fatalf("late score event: %s", ev.Raw)
		}
		if b := pub(e, "/v1/properties/arcade/users/eve/balance"); b.Body["pending"] != "0" {
			t.Fatalf("eve was paid: %s", b.Raw)
		}
	})
}

// The duration shrinks mid-window: the open window keeps the end it began with, for
// what the leaderboard shows and for when the closer closes it.
func TestTournamentDurationChangedMidWindow(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		base := newEnv(t, d)
		e := base.withProperty(snakeOnly(t, nil))
		e.clock.Set(week.Add(50 * time.Hour))
		postScore(t, e, "ann", "a1", 300, "over", week.Add(time.Hour))
		short := base.withProperty(snakeOnly(t, func(st *rewards.Tournament) { st.Duration = 48 * time.Hour }))
		lb := pub(short, "/v1/properties/arcade/tournaments/snake-weekly/leaderboard?window=2026-11-23T00:00:00Z")
		w, _ := lb.Body["window"].(map[string]any)
		if lb.Code != 200 || w["end"] != "2026-11-30T00:00:00Z" || w["closes_at"] != "2026-11-30T00:15:00Z" || w["state"] != "open" || rowsLine(lb) != "1:ann:300" {
			t.Fatalf("the open window after the duration shrank: %s", lb.Raw)
		}
		// It is still the current window, though by today's duration it would have ended.
		cur := pub(short, "/v1/properties/arcade/tournaments/snake-weekly/leaderboard")
		if cw, _ := cur.Body["window"].(map[string]any); cur.Code != 200 || cw["start"] != "2026-11-23T00:00:00Z" || cw["end"] != "2026-11-30T00:00:00Z" || rowsLine(cur) != "1:ann:300" {
			t.Fatalf("current leaderboard after the duration shrank: %s", cur.Raw)
		}
		list := pub(short, "/v1/properties/arcade/tournaments")
		if data, _ := list.Body["data"].([]any); list.Code != 200 || len(data) != 1 ||
			data[0].(map[string]any)["current_window"].(map[string]any)["state"] != "open" ||
			data[0].(map[string]any)["current_window"].(map[string]any)["start"] != "2026-11-23T00:00:00Z" {
			t.Fatalf("tournaments after the duration shrank: %s", list.Raw)
		}
		if res, err := short.app.CloseTournaments(context.Background()); err != nil || len(res) != 0 {
			t.Fatalf("closer past the new duration's end: %+v, %v", res, err)
		}
		short.clock.Set(weekEnd.Add(15*time.Minute + 10*time.Second))
		res, err := short.app.CloseTournaments(context.Background())
		if err != nil || len(res) != 1 || res[0].Outcome != rewards.CloseDone || !res[0].Window.End.Equal(weekEnd) {
			t.Fatalf("closer at the row's end + grace: %+v, %v", res, err)
		}
	})
}

// A tournament pointed at another game mid-window keeps ranking the game its window
// began with; the new game counts from the next window. The board ranked both games'
// scores (in unrelated units) together, and the closer paid prizes by that ranking.
func TestTournamentGameChangedMidWindow(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		base := newEnv(t, d)
		e := base.withProperty(snakeOnly(t, nil))
		e.clock.Set(week.Add(50 * time.Hour))
		postScore(t, e, "ann", "a1", 9000, "over", week.Add(time.Hour))
		moved := base.withProperty(snakeOnly(t, func(st *rewards.Tournament) { st.Game = "Other_Game" }))
		score := func(user, play string, made time.Time) answer {
			t.Helper()
			body := fmt.Sprintf(`{"gameCode":"Other_Game","sessionId":"s-%s","gamePlayId":"%s","timestamp":%d,"score":100,"subId":"%s","state":"over"}`,
				play, play, made.Unix(), user)
			a := moved.do("POST", "/v1/hooks/arcade/gamezop/scores", body, "api-key", scoresKey)
			if a.Code != 200 {
				t.Fatalf("score: %d %s", a.Code, a.Raw)
			}
			return moved.event(a.Body["event_id"])
		}
		ev := score("bob", "b1", week.Add(60*time.Hour))
		if reason, _ := ev.Body["reason"].(string); !strings.Contains(reason, "ranks game NyM_JGWcx, its game when it began; score on Other_Game not counted") {
			t.Fatalf("a score on the new game in the window begun on the old one: %s", ev.Raw)
		}
		// The tournament names the configured game; its current window, the one it ranks.
		list := pub(moved, "/v1/properties/arcade/tournaments")
		if !strings.Contains(list.Raw, `"game":"Other_Game"`) || !strings.Contains(list.Raw, `"current_window":{"game":"NyM_JGWcx"`) {
			t.Fatalf("tournaments after the game changed: %s", list.Raw)
		}
		if lb := pub(moved, "/v1/properties/arcade/tournaments/snake-weekly/leaderboard"); !strings.Contains(lb.Raw, `"window":{"game":"NyM_JGWcx"`) {
			t.Fatalf("current leaderboard after the game changed: %s", lb.Raw)
		}
		moved.clock.Set(weekEnd.Add(15*time.Minute + 10*time.Second))
		res, err := moved.app.CloseTournaments(context.Background())
		if err != nil || len(res) != 1 || len(res[0].Awards) != 1 || res[0].Awards[0].User != "ann" {
			t.Fatalf("close of the window begun on the old game: %+v, %v; want ann alone paid", res, err)
		}
		// The next window ranks the new game.
		moved.clock.Set(weekEnd.Add(time.Hour))
		if ev := score("bob", "b2", weekEnd.Add(30*time.Minute)); !strings.Contains(fmt.Sprint(ev.Body["reason"]), "counted in window 2026-11-30T00:00:00Z") {
			t.Fatalf("a score on the new game in the next window: %s", ev.Raw)
		}
	})
}

// A tournament of one window has no next window: a score on the game it was pointed at
// mid-window is noted as never counting there.
func TestTournamentOneWindowGameChanged(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		base := newEnv(t, d)
		e := base.withProperty(oneWindowCup(t, weekEnd))
		e.clock.Set(week.Add(50 * time.Hour))
		postScore(t, e, "ann", "a1", 9000, "over", week.Add(time.Hour))
		moved := base.withProperty(func(p *appProperty) {
			oneWindowCup(t, weekEnd)(p)
			p.Rules.Tournaments[0].Game = "Other_Game"
		})
		body := fmt.Sprintf(`{"gameCode":"Other_Game","sessionId":"s-b1","gamePlayId":"b1","timestamp":%d,"score":100,"subId":"bob","state":"over"}`,
			week.Add(49*time.Hour).Unix())
		a := moved.do("POST", "/v1/hooks/arcade/gamezop/scores", body, "api-key", scoresKey)
		if ev := moved.event(a.Body["event_id"]); !strings.Contains(fmt.Sprint(ev.Body["reason"]), "not counted (a tournament of one window ranks no other game)") {
			t.Fatalf("a score on the new game of a cup: %s", ev.Raw)
		}
	})
}

// A window in which no score counted has no row and is never closed: after its grace it
// is closing while receipts may still be committed (the closer's margin), then ended.
func TestTournamentEmptyWindowEnds(t *testing.T) {
	e := newEnv(t, store.SQLite).withProperty(func(p *appProperty) {
		cup := snakeWeekly(t)
		cup.Next, cup.Start, cup.End = nil, week, weekEnd
		p.Rules.Tournaments = []rewards.Tournament{cup}
	})
	state := func() any {
		t.Helper()
		list := pub(e, "/v1/properties/arcade/tournaments")
		data, _ := list.Body["data"].([]any)
		if list.Code != 200 || len(data) != 1 {
			t.Fatalf("list: %s", list.Raw)
		}
		return data[0].(map[string]any)["current_window"].(map[string]any)["state"]
	}
	e.clock.Set(weekEnd.Add(15 * time.Minute))
	if s := state(); s != "closing" {
		t.Fatalf("at end + grace: %v", s)
	}
	e.clock.Set(weekEnd.Add(15*time.Minute + 10*time.Second))
	if s := state(); s != "ended" {
		t.Fatalf("after the closer's margin, nothing waiting: %v", s)
	}
}

func TestTournamentRoutesRefuse(t *testing.T) {
	e := newEnv(t, store.SQLite).withProperty(func(p *appProperty) { p.Rules.Tournaments = []rewards.Tournament{snakeWeekly(t)} })
	for _, c := range []struct {
		path  string
		code  int
		field string
	}{
		{"/v1/properties/arcade/tournaments/nope/leaderboard", 404, ""},
		{"/v1/properties/arcade/tournaments/snake-weekly/leaderboard?window=2026-11-24T00:00:00Z", 400, "window"}, // a Tuesday
		{"/v1/properties/arcade/tournaments/snake-weekly/leaderboard?window=yesterday", 400, "window"},
		{"/v1/properties/arcade/tournaments/snake-weekly/leaderboard?limit=0", 400, "limit"},
		{"/v1/properties/arcade/tournaments/snake-weekly/leaderboard?cursor=zzz", 400, "cursor"},
		{"/v1/properties/arcade/tournaments/snake-weekly/leaderboard?user=%07", 400, "user"},
	} {
		a := pub(e, c.path)
		if a.Code != c.code || problemField(a) != c.field {
			t.Errorf("%s: %d %s, want %d naming %q", c.path, a.Code, a.Raw, c.code, c.field)
		}
	}
	if a := e.do("GET", "/v1/properties/arcade/tournaments", "", "Authorization", "Bearer "+otherKey); a.Code != 401 {
		t.Errorf("another property's key: %d", a.Code)
	}
}

// oneWindowCup configures arcade with only the snake tournament, as one window from week
// to end.
func oneWindowCup(t *testing.T, end time.Time) func(*appProperty) { return cupFromTo(t, week, end) }

// cupFromTo configures arcade with only the snake tournament, as one window from start
// to end.
func cupFromTo(t *testing.T, start, end time.Time) func(*appProperty) {
	return snakeOnly(t, func(c *rewards.Tournament) { c.Next, c.Duration, c.Start, c.End = nil, 0, start, end })
}

// snakeOnly configures arcade with only the snake-weekly tournament, changed by change
// unless it is nil, and no targets (every credit is a prize).
func snakeOnly(t *testing.T, change func(*rewards.Tournament)) func(*appProperty) {
	return func(p *appProperty) {
		st := snakeWeekly(t)
		if change != nil {
			change(&st)
		}
		p.Rules.Targets = nil
		p.Rules.Tournaments = []rewards.Tournament{st}
	}
}

// A one-window tournament whose start the operator moves while it runs (a time zone
// fixed: 12 hours later, and the end with it) keeps the one window that began: a score
// made after its end, inside the moved range, does not begin a second window beside it.
// Before, it did, and the closer ranked and paid both: the prize table twice, rank 1 to
// the same user.
func TestTournamentOneWindowStartMovedPaysOnce(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		base := newEnv(t, d)
		old := base.withProperty(cupFromTo(t, week, week.Add(24*time.Hour)))
		old.clock.Set(week.Add(time.Hour))
		postScore(t, old, "ann", "a1", 300, "over", week.Add(time.Hour))
		moved := base.withProperty(cupFromTo(t, week.Add(12*time.Hour), week.Add(36*time.Hour)))
		moved.clock.Set(week.Add(30 * time.Hour))
		id := postScore(t, moved, "ann", "a2", 200, "over", week.Add(30*time.Hour))
		if ev := moved.event(id); !strings.Contains(fmt.Sprint(ev.Body["reason"]), "its one window began at 2026-11-23T00:00:00Z") {
			t.Fatalf("a score in the moved range only: %s", ev.Raw)
		}
		paid := 0
		for _, at := range []time.Time{week.Add(24*time.Hour + 16*time.Minute), week.Add(36*time.Hour + 16*time.Minute)} {
			moved.clock.Set(at)
			res, err := moved.app.CloseTournaments(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res {
				if r.Outcome == rewards.CloseDone {
					paid++
				}
			}
		}
		if paid != 1 {
			t.Fatalf("%d windows closed and paid, want the one", paid)
		}
		moved.wantBalance("arcade", "ann", apiKey, "0", "1000")
	})
}

// A one-window tournament (start, end) whose end the operator moves later while it runs
// is extended: scores made after the old end count, the closer waits for the new end +
// grace, and the window pays its ranking then. Before, the window kept the end it began
// with, since no next window exists for a change to wait for: the extension was ignored
// and the leaders at the old end were paid.
func TestTournamentOneWindowExtended(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		base := newEnv(t, d)
		day := base.withProperty(oneWindowCup(t, week.Add(24*time.Hour)))
		day.clock.Set(week.Add(time.Hour))
		postScore(t, day, "ann", "a1", 300, "over", week.Add(time.Hour))
		long := base.withProperty(oneWindowCup(t, week.Add(72*time.Hour)))
		long.clock.Set(week.Add(30 * time.Hour))
		id := postScore(t, long, "bob", "b1", 500, "over", week.Add(30*time.Hour))
		if ev := long.event(id); !strings.Contains(fmt.Sprint(ev.Body["reason"]), "counted in window 2026-11-23T00:00:00Z") {
			t.Fatalf("bob's score after the old end: %s", ev.Raw)
		}
		lb := pub(long, "/v1/properties/arcade/tournaments/snake-weekly/leaderboard")
		if w, _ := lb.Body["window"].(map[string]any); lb.Code != 200 || w["end"] != "2026-11-26T00:00:00Z" || w["state"] != "open" ||
			rowsLine(lb) != "1:bob:500 2:ann:300" {
			t.Fatalf("leaderboard after the extension: %s", lb.Raw)
		}
		long.clock.Set(week.Add(24*time.Hour + 16*time.Minute)) // the old end + grace + margin
		if res, err := long.app.CloseTournaments(context.Background()); err != nil || len(res) != 0 {
			t.Fatalf("closer at the old end: %+v, %v", res, err)
		}
		long.clock.Set(week.Add(72*time.Hour + 16*time.Minute))
		res, err := long.app.CloseTournaments(context.Background())
		if err != nil || len(res) != 1 || res[0].Outcome != rewards.CloseDone || !res[0].Window.End.Equal(week.Add(72*time.Hour)) ||
			len(res[0].Awards) != 2 || res[0].Awards[0].User != "bob" || res[0].Awards[0].Amount.String() != "1000" {
			t.Fatalf("closer at the new end + grace: %+v, %v", res, err)
		}
	})
}

// A weekly tournament turned into a one-window cup that overlaps the last weekly window
// begins its own window: the weekly one is not the cup's "one window". Found with the
// fix above, which refused every score of such a cup.
func TestTournamentScheduleReplacedByACup(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		base := newEnv(t, d)
		weekly := base.withProperty(func(p *appProperty) { p.Rules.Tournaments = []rewards.Tournament{snakeWeekly(t)} })
		weekly.clock.Set(week.Add(time.Hour))
		postScore(t, weekly, "ann", "a1", 300, "over", week.Add(time.Hour))
		weekly.clock.Set(weekEnd.Add(16 * time.Minute))
		if res, err := weekly.app.CloseTournaments(context.Background()); err != nil || len(res) != 1 || res[0].Outcome != rewards.CloseDone {
			t.Fatalf("weekly close: %+v %v", res, err)
		}
		cup := base.withProperty(cupFromTo(t, week.Add(72*time.Hour), week.Add(30*24*time.Hour)))
		cup.clock.Set(week.Add(200 * time.Hour))
		id := postScore(t, cup, "bob", "b1", 500, "over", week.Add(200*time.Hour))
		if ev := cup.event(id); !strings.Contains(fmt.Sprint(ev.Body["reason"]), "counted in window 2026-11-26T00:00:00Z") {
			t.Fatalf("bob's cup score, made after the weekly window closed: %s", ev.Raw)
		}
	})
}

// Extended with no score after the change, the window closes at the new end + grace and
// its record shows the new end. Before, the row kept the old end with the new closes_at.
func TestTournamentOneWindowExtendedWithoutLaterScores(t *testing.T) {
	e := newEnv(t, store.SQLite)
	day := e.withProperty(oneWindowCup(t, week.Add(24*time.Hour)))
	day.clock.Set(week.Add(time.Hour))
	postScore(t, day, "ann", "a1", 300, "over", week.Add(time.Hour))
	long := e.withProperty(oneWindowCup(t, week.Add(72*time.Hour)))
	long.clock.Set(week.Add(72*time.Hour + 16*time.Minute))
	res, err := long.app.CloseTournaments(context.Background())
	if err != nil || len(res) != 1 || res[0].Outcome != rewards.CloseDone {
		t.Fatalf("close at the new end + grace: %+v, %v", res, err)
	}
	lb := pub(long, "/v1/properties/arcade/tournaments/snake-weekly/leaderboard?window=2026-11-23T00:00:00Z")
	if w, _ := lb.Body["window"].(map[string]any); lb.Code != 200 || w["end"] != "2026-11-26T00:00:00Z" || w["closes_at"] != "2026-11-26T00:15:00Z" ||
		w["state"] != "closed" {
		t.Fatalf("the closed window: %s", lb.Raw)
	}
}
