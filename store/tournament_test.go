package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"tally/rewards"
	"tally/store"
	"tally/store/storetest"
)

// Windows start at 12:00 UTC each day and last a day: every window crosses midnight.
var (
	win0  = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	win0W = rewards.Window{Start: win0, End: win0.Add(24 * time.Hour), ClosesAt: win0.Add(24*time.Hour + 15*time.Minute)}
)

func dailyTournament() rewards.Tournament {
	return rewards.Tournament{ID: "snake-daily", Version: "v1", Game: "NyM_JGWcx", Direction: rewards.Higher,
		States: []string{"over"}, Duration: 24 * time.Hour, Grace: 15 * time.Minute, Ties: rewards.TiesSplit, MinPlays: 1,
		Prizes: []rewards.Prize{{From: 1, To: 1, Amount: d("100")}, {From: 2, To: 3, Amount: d("40")}},
		Next: func(t time.Time) time.Time {
			n := time.Date(t.Year(), t.Month(), t.Day(), 12, 0, 0, 0, time.UTC)
			if !n.After(t) {
				n = n.AddDate(0, 0, 1)
			}
			return n
		}}
}

// decideTournament applies testRules with the daily tournament and without score
// targets, so every credit in these tests is a prize.
func decideTournament(k rewards.Kept) rewards.Decision {
	r := testRules()
	r.Targets = nil
	r.Tournaments = []rewards.Tournament{dailyTournament()}
	return rewards.Decision{Event: k.Event, Rules: &r}
}

// tscore is a Gamezop score of play, made at made.
func tscore(user, play, value, state string, made time.Time) rewards.Inbound {
	ev := rewards.Event{Source: rewards.SourceGamezopScores, Kind: rewards.KindScore, Type: state, OccurredAt: &made,
		DedupeKey: fmt.Sprintf("%s|%s|%s|%s|%d", user, play, value, state, made.UnixMilli()), User: user,
		Score: &rewards.Score{Game: "NyM_JGWcx", Value: d(value), State: state, PlayID: play}}
	return in(ev)
}

func recordAndApply(t *testing.T, db *store.DB, batch ...rewards.Inbound) []rewards.Receipt {
	t.Helper()
	ctx := context.Background()
	res, err := db.Record(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	for {
		got, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded}, decideTournament)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			return res
		}
	}
}

func board(t *testing.T, db *store.DB, limit int, cursor, user string) rewards.Leaderboard {
	t.Helper()
	lb, err := db.Leaderboard(context.Background(), rewards.LeaderboardQuery{Property: "arcade", Tournament: dailyTournament(), Window: win0W,
		Limit: limit, Cursor: cursor, User: user})
	if err != nil {
		t.Fatal(err)
	}
	return lb
}

func boardLine(rows []rewards.LeaderboardRow) string {
	parts := make([]string, len(rows))
	for i, r := range rows {
		parts[i] = fmt.Sprintf("%d:%s:%s/%d", r.Rank, r.User, r.Score, r.Plays)
		if r.Prize != nil {
			parts[i] += "=" + r.Prize.String()
		}
	}
	return strings.Join(parts, " ")
}

func reasonOf(t *testing.T, db *store.DB, id int64) string {
	t.Helper()
	k, _, err := db.Event(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return k.Reason
}

func TestTournamentLeaderboardFromAppliedScores(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		clock := storetest.NewClock(win0.Add(11 * time.Hour)) // 23:00, the first evening of the window
		db := storetest.Open(t, dia, clock.Now)
		evening, night := win0.Add(11*time.Hour+59*time.Minute), win0.Add(12*time.Hour+time.Minute) // 23:59 and 00:01
		res := recordAndApply(t, db,
			tscore("ann", "a1", "300", "over", win0.Add(time.Hour)),
			tscore("bob", "b1", "500", "over", win0.Add(2*time.Hour)),
			tscore("cat", "c1", "400", "over", win0.Add(3*time.Hour)),
			tscore("dan", "d1", "9999", "start", win0.Add(3*time.Hour)), // start never counts
			tscore("eve", "e0", "1", "over", win0.Add(-time.Minute)),    // made in the window before, closed at 12:15
		)
		if r := reasonOf(t, db, res[3].EventID); !strings.Contains(r, `tournament snake-daily: state "start" not counted`) {
			t.Fatalf("reason of a start score: %q", r)
		}
		if r := reasonOf(t, db, res[4].EventID); !strings.Contains(r, "window 2026-11-30T12:00:00Z closed at 2026-12-01T12:15:00Z; score received late") {
			t.Fatalf("reason of a score for the window before: %q", r)
		}
		if r := reasonOf(t, db, res[0].EventID); !strings.Contains(r, "counted in window 2026-12-01T12:00:00Z") {
			t.Fatalf("reason of a counted score: %q", r)
		}
		// Over midnight, one window: ann betters her score after midnight (a later batch),
		// and reports the same play again (a redelivery with another timestamp): one play
		// more, not two. A worse score changes nothing but the play count.
		clock.Set(win0.Add(12*time.Hour + 2*time.Minute))
		recordAndApply(t, db,
			tscore("ann", "a2", "450", "over", evening),
			tscore("ann", "a2", "450", "over", night),
			tscore("bob", "b2", "100", "over", night),
		)
		lb := board(t, db, 10, "", "")
		if got := boardLine(lb.Rows); got != "1:bob:500/2 2:ann:450/2 3:cat:400/1" {
			t.Fatalf("leaderboard %s", got)
		}
		if lb.Rows[1].AchievedAt != evening {
			t.Fatalf("ann's best was made at %s, want %s (the first report of it)", lb.Rows[1].AchievedAt, evening)
		}
		// A page at a time, and one user's own row.
		p1 := board(t, db, 2, "", "cat")
		p2 := board(t, db, 2, p1.NextCursor, "")
		if boardLine(p1.Rows) != "1:bob:500/2 2:ann:450/2" || boardLine(p2.Rows) != "3:cat:400/1" || p2.NextCursor != "" {
			t.Fatalf("pages %q then %q (cursor %q)", boardLine(p1.Rows), boardLine(p2.Rows), p2.NextCursor)
		}
		if p1.UserRow == nil || p1.UserRow.Rank != 3 || p1.UserRow.User != "cat" {
			t.Fatalf("cat's row %+v", p1.UserRow)
		}
		if _, err := db.Leaderboard(context.Background(), rewards.LeaderboardQuery{Property: "arcade", Tournament: dailyTournament(),
			Window: win0W, Limit: 2, Cursor: "bm90LWEtY3Vyc29y"}); !errors.Is(err, rewards.ErrBadCursor) {
			t.Fatalf("a forged cursor: %v", err)
		}
	})
}

// Ties split on the live board: equal scores share a rank, the next takes the rank
// after all of them; a user's own row says the same.
func TestTournamentLeaderboardTies(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		db := storetest.Open(t, dia, storetest.NewClock(win0.Add(time.Hour)).Now)
		recordAndApply(t, db,
			tscore("u1", "1", "7", "over", win0.Add(time.Minute)),
			tscore("u2", "2", "9", "over", win0.Add(2*time.Minute)),
			tscore("u3", "3", "9", "over", win0.Add(3*time.Minute)),
			tscore("u4", "4", "10", "over", win0.Add(4*time.Minute)),
		)
		p1 := board(t, db, 2, "", "u1")
		p2 := board(t, db, 2, p1.NextCursor, "u3")
		if got := boardLine(p1.Rows) + " | " + boardLine(p2.Rows); got != "1:u4:10/1 2:u2:9/1 | 2:u3:9/1 4:u1:7/1" {
			t.Fatalf("pages %s", got)
		}
		if p1.UserRow.Rank != 4 || p2.UserRow.Rank != 2 {
			t.Fatalf("own rows: u1 %d, u3 %d", p1.UserRow.Rank, p2.UserRow.Rank)
		}
	})
}

// The current window and its page in one call: the schedule's window while it is open,
// the window that began earlier while it is open by the end it began with (the duration
// shrank since), the next window once one closed, and a tournament of one window after
// its close (its final board). CurrentTournamentWindow names the same window each time.
func TestTournamentCurrentLeaderboard(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(win0.Add(time.Hour))
		db := storetest.Open(t, dia, clock.Now)
		recordAndApply(t, db,
			tscore("a", "a1", "9", "over", win0.Add(time.Minute)),
			tscore("b", "b1", "5", "over", win0.Add(2*time.Minute)),
		)
		current := func(tour rewards.Tournament) (string, rewards.Window, rewards.Leaderboard) {
			t.Helper()
			lb, w, ok, err := db.CurrentLeaderboard(ctx, rewards.LeaderboardQuery{Property: "arcade", Tournament: tour, Limit: 10, User: "b"},
				clock.Now())
			if err != nil || !ok {
				t.Fatalf("current leaderboard: %v, %v", ok, err)
			}
			cw, rec, ok, err := db.CurrentTournamentWindow(ctx, "arcade", tour, clock.Now())
			if err != nil || !ok || !cw.Start.Equal(w.Start) || !cw.End.Equal(w.End) || !cw.ClosesAt.Equal(w.ClosesAt) ||
				rec.Exists != lb.Record.Exists || rec.FinalBoard != lb.Record.FinalBoard || !rec.Start.Equal(lb.Record.Start) {
				t.Fatalf("current window %+v %+v, %v, %v; the leaderboard's %+v %+v", cw, rec, ok, err, w, lb.Record)
			}
			line := boardLine(lb.Rows)
			if lb.UserRow != nil {
				line += " | " + boardLine([]rewards.LeaderboardRow{*lb.UserRow})
			}
			return line, w, lb
		}
		if got, w, _ := current(dailyTournament()); got != "1:a:9/1 2:b:5/1 | 2:b:5/1" || !w.Start.Equal(win0) {
			t.Fatalf("the schedule's window: %s, %+v", got, w)
		}
		shrunk := dailyTournament()
		shrunk.Duration = 6 * time.Hour
		clock.Set(win0.Add(10 * time.Hour))
		if got, w, _ := current(shrunk); got != "1:a:9/1 2:b:5/1 | 2:b:5/1" || !w.Start.Equal(win0) || !w.End.Equal(win0W.End) {
			t.Fatalf("the window begun under a longer duration: %s, %+v", got, w)
		}
		one := dailyTournament()
		one.Next, one.Start, one.End = nil, win0, win0W.End
		clock.Set(win0W.ClosesAt)
		if got, err := db.CloseTournamentWindow(ctx, "arcade", one, win0W); err != nil || got.Outcome != rewards.CloseDone {
			t.Fatalf("close: %+v, %v", got, err)
		}
		clock.Set(win0W.ClosesAt.Add(time.Minute))
		if got, w, lb := current(dailyTournament()); got != "" || !w.Start.Equal(win0W.End) || lb.Record.Exists {
			t.Fatalf("the next window: %q, %+v, %+v", got, w, lb.Record)
		}
		if got, w, lb := current(one); got != "1:a:9/1=100 2:b:5/1=40 | 2:b:5/1=40" || !w.Start.Equal(win0) || !lb.Record.FinalBoard {
			t.Fatalf("the only window, closed: %s, %+v, %+v", got, w, lb.Record)
		}
	})
}

// CheckInvariants holds a closed window's records to the ledger: its paid total, its
// prize rows and the prizes on its final board, which the publisher API shows, against
// the prize legs that were posted. Before, they could say anything and verify passed.
func TestCheckInvariantsHoldsTournamentPrizesToTheLedger(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		// Prize rows and final boards are append-only (migration 00027): tampering with
		// them takes their triggers out of the way first, as the database's owner could.
		for _, c := range []struct{ name, table, tamper, want string }{
			{"paid", "tournament_windows", `UPDATE tournament_windows SET paid = '5'`, "paid 5, its prize rows sum to 140"},
			{"prize row", "tournament_prizes", `DELETE FROM tournament_prizes WHERE user_id = 'b'`, "have no prize row"},
			{"prize amount", "tournament_prizes", `UPDATE tournament_prizes SET amount = '41' WHERE user_id = 'b'`, "41 recorded, prize legs [40]"},
			{"final board", "tournament_results", `UPDATE tournament_results SET prize = '5' WHERE user_id = 'a'`, "the prizes on its final board to 45"},
			{"window reopened", "tournament_windows", `UPDATE tournament_windows SET closed_at = NULL`, "its window is not closed"},
		} {
			t.Run(c.name, func(t *testing.T) {
				clock := storetest.NewClock(win0.Add(time.Hour))
				db := storetest.Open(t, dia, clock.Now)
				recordAndApply(t, db, tscore("a", "a1", "9", "over", win0.Add(time.Minute)),
					tscore("b", "b1", "8", "over", win0.Add(2*time.Minute)))
				clock.Set(win0W.ClosesAt)
				if got, err := db.CloseTournamentWindow(ctx, "arcade", dailyTournament(), win0W); err != nil || !got.Paid.Equal(d("140")) {
					t.Fatalf("close: %+v, %v", got, err)
				}
				wantTamperCaught(t, db, c.table, c.tamper, c.want)
			})
		}
	})
}

// A closed window's prize rows and final board are what its winners were paid and what
// the publisher API shows: UPDATE, DELETE and (Postgres) TRUNCATE are refused on them, as
// on the ledger (migration 00027). Before, only `tally verify` noticed a change.
func TestTournamentPayoutRecordsAreAppendOnly(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(win0.Add(time.Hour))
		db := storetest.Open(t, dia, clock.Now)
		recordAndApply(t, db, tscore("a", "a1", "9", "over", win0.Add(time.Minute)),
			tscore("b", "b1", "8", "over", win0.Add(2*time.Minute)))
		clock.Set(win0W.ClosesAt)
		if got, err := db.CloseTournamentWindow(ctx, "arcade", dailyTournament(), win0W); err != nil || !got.Paid.Equal(d("140")) {
			t.Fatalf("close: %+v, %v", got, err)
		}
		stmts := []string{
			`UPDATE tournament_prizes SET amount = '1000'`,
			`DELETE FROM tournament_prizes`,
			`UPDATE tournament_results SET prize = '1000'`,
			`DELETE FROM tournament_results`,
		}
		if dia == store.Postgres {
			stmts = append(stmts, `TRUNCATE tournament_prizes`, `TRUNCATE tournament_results`)
		}
		wantRefused(t, db, stmts)
		for table, want := range map[string]int64{"tournament_prizes": 2, "tournament_results": 2} {
			if n, err := store.QueryInt(ctx, db, `SELECT count(*) FROM `+table); err != nil || n != want {
				t.Errorf("%s holds %d rows (%v), want %d", table, n, err, want)
			}
		}
		if err := db.CheckInvariants(ctx, "arcade"); err != nil {
			t.Errorf("after the refused changes: %v", err)
		}
	})
}

// A cursor pages the window it was issued for. Paging window=current across a close went
// on in the next window from the last one's position: its leaders were skipped and its
// ranks numbered on (3, 4 for what were 2 and 3).
func TestLeaderboardCursorKeepsItsWindow(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(win0.Add(time.Hour))
		db := storetest.Open(t, dia, clock.Now)
		recordAndApply(t, db, tscore("a", "a1", "50", "over", win0.Add(time.Minute)),
			tscore("b", "b1", "40", "over", win0.Add(2*time.Minute)), tscore("c", "c1", "30", "over", win0.Add(3*time.Minute)))
		q := rewards.LeaderboardQuery{Property: "arcade", Tournament: dailyTournament(), Limit: 2}
		first, w, _, err := db.CurrentLeaderboard(ctx, q, clock.Now())
		if err != nil || boardLine(first.Rows) != "1:a:50/1 2:b:40/1" || !w.Start.Equal(win0) || first.NextCursor == "" {
			t.Fatalf("first page: %s, %+v, %v", boardLine(first.Rows), w, err)
		}
		next := win0W.End
		clock.Set(next.Add(30 * time.Minute)) // past the first window's grace
		recordAndApply(t, db, tscore("x", "x1", "45", "over", next.Add(time.Minute)),
			tscore("y", "y1", "35", "over", next.Add(2*time.Minute)), tscore("z", "z1", "20", "over", next.Add(3*time.Minute)))

		q.Cursor = first.NextCursor
		page, w, ok, err := db.CurrentLeaderboard(ctx, q, clock.Now())
		if err != nil || !ok || !w.Start.Equal(win0) || boardLine(page.Rows) != "3:c:30/1" || page.NextCursor != "" {
			t.Fatalf("next page of window=current after the close: %s in the window of %s, %v, %v", boardLine(page.Rows), w.Start, ok, err)
		}
		// The new current window reads from its own top.
		q.Cursor = ""
		if page, w, _, err := db.CurrentLeaderboard(ctx, q, clock.Now()); err != nil || !w.Start.Equal(next) ||
			boardLine(page.Rows) != "1:x:45/1 2:y:35/1" {
			t.Fatalf("the new window: %s in %s, %v", boardLine(page.Rows), w.Start, err)
		}
		// Asked for by its start, another window refuses the cursor.
		nextW, _ := dailyTournament().WindowStarting(next)
		q.Cursor, q.Window = first.NextCursor, nextW
		if _, err := db.Leaderboard(ctx, q); !errors.Is(err, rewards.ErrBadCursor) {
			t.Fatalf("a cursor of %s on the window of %s: %v, want ErrBadCursor", win0, next, err)
		}
		q.Window = win0W
		if page, err := db.Leaderboard(ctx, q); err != nil || boardLine(page.Rows) != "3:c:30/1" {
			t.Fatalf("the cursor on its own window: %s, %v", boardLine(page.Rows), err)
		}
	})
}

// Grace: a score made before the end and received during the grace counts; one received
// at end + grace does not, and says so. The window does not close before end + grace,
// nor while an event received before then waits for the applier.
func TestTournamentGraceAndWaiting(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(win0W.End.Add(14 * time.Minute))
		db := storetest.Open(t, dia, clock.Now)
		tour := dailyTournament()
		recordAndApply(t, db, tscore("ann", "a1", "10", "over", win0W.End.Add(-time.Second)))
		if got, err := db.CloseTournamentWindow(ctx, "arcade", tour, win0W); err != nil || got.Outcome != rewards.CloseNotDue {
			t.Fatalf("close inside the grace: %+v, %v", got, err)
		}
		// Received a microsecond before end + grace, not yet applied: the closer waits.
		clock.Set(win0W.ClosesAt.Add(-time.Microsecond))
		if _, err := db.Record(ctx, []rewards.Inbound{tscore("bob", "b1", "20", "over", win0W.End.Add(-time.Second))}); err != nil {
			t.Fatal(err)
		}
		clock.Set(win0W.ClosesAt)
		if got, err := db.CloseTournamentWindow(ctx, "arcade", tour, win0W); err != nil || got.Outcome != rewards.CloseWaiting {
			t.Fatalf("close with an event waiting: %+v, %v", got, err)
		}
		res := recordAndApply(t, db, tscore("cat", "c1", "30", "over", win0W.End.Add(-time.Second))) // received at end + grace
		if r := reasonOf(t, db, res[0].EventID); !strings.Contains(r, "received late, not counted") {
			t.Fatalf("reason of a late score: %q", r)
		}
		got, err := db.CloseTournamentWindow(ctx, "arcade", tour, win0W)
		if err != nil || got.Outcome != rewards.CloseDone || got.Ranked != 2 || !got.Paid.Equal(d("140")) {
			t.Fatalf("close: %+v, %v", got, err)
		}
		wantBalance(t, db, "bob", "100", "0")
		wantBalance(t, db, "ann", "40", "0")
		wantBalance(t, db, "cat", "0", "0")
	})
}

// Three closers at once, each with its own pool, after one killed half-way: the window
// pays each prize once, and a score applied after the close is recorded and changes
// nothing.
func TestTournamentCloseExactlyOnceConcurrentAndKilled(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(win0.Add(time.Hour))
		u := storetest.URL(t, dia)
		db := storetest.OpenURL(t, u, clock.Now)
		// Ranks: a and b tie for 1st (100 + 40 split: 70 each), c is 3rd (40), d 4th (nothing).
		recordAndApply(t, db,
			tscore("a", "1", "9", "over", win0.Add(time.Minute)),
			tscore("b", "2", "9", "over", win0.Add(2*time.Minute)),
			tscore("c", "3", "8", "over", win0.Add(3*time.Minute)),
			tscore("d", "4", "7", "over", win0.Add(4*time.Minute)),
		)
		clock.Set(win0W.ClosesAt)
		tour := dailyTournament()
		if _, err := db.CloseTournamentWindowKilled(ctx, "arcade", tour, win0W); err == nil {
			t.Fatal("the killed close committed")
		}
		for _, user := range []string{"a", "b", "c"} {
			wantBalance(t, db, user, "0", "0")
		}
		if rec, err := db.TournamentWindow(ctx, "arcade", tour.ID, win0); err != nil || !rec.ClosedAt.IsZero() || rec.FinalBoard {
			t.Fatalf("window after the kill: %+v, %v", rec, err)
		}
		if n, err := store.QueryInt(ctx, db, `SELECT COUNT(*) FROM tournament_results`); err != nil || n != 0 {
			t.Fatalf("the killed close left %d rows of its final board, %v", n, err)
		}

		n := 1
		if dia == store.Postgres {
			n = 3 // SQLite has one writer: concurrency there is only queueing
		}
		closers := []*store.DB{db}
		for len(closers) < n {
			closers = append(closers, storetest.OpenURL(t, u, clock.Now))
		}
		var wg sync.WaitGroup
		outcomes := make(chan string, n)
		for _, c := range closers {
			wg.Go(func() {
				got, err := c.CloseTournamentWindow(ctx, "arcade", tour, win0W)
				if err != nil {
					t.Errorf("closer: %v", err)
				}
				outcomes <- got.Outcome
			})
		}
		wg.Wait()
		close(outcomes)
		count := map[string]int{}
		for o := range outcomes {
			count[o]++
		}
		if count[rewards.CloseDone] != 1 || count[rewards.CloseAlready] != n-1 {
			t.Fatalf("outcomes %v, want one close and %d already closed", count, n-1)
		}
		if n, err := store.QueryInt(ctx, db, `SELECT COUNT(*) FROM tournament_plays`); err != nil || n != 0 {
			t.Fatalf("%d plays kept after the close, %v", n, err)
		}
		// Once more, later, from the first pool: nothing.
		if got, err := db.CloseTournamentWindow(ctx, "arcade", tour, win0W); err != nil || got.Outcome != rewards.CloseAlready {
			t.Fatalf("closing again: %+v, %v", got, err)
		}
		// The final board is stored once, with the ranks and prizes of the close.
		if n, err := store.QueryInt(ctx, db, `SELECT COUNT(*) FROM tournament_results`); err != nil || n != 4 {
			t.Fatalf("%d rows of the final board, want 4 (%v)", n, err)
		}
		if n, err := store.QueryInt(ctx, db, `SELECT COUNT(*) FROM tournament_results WHERE prize IS NOT NULL AND rank IS NOT NULL`); err != nil || n != 3 {
			t.Fatalf("%d prizes on the final board, want 3 (%v)", n, err)
		}
		if rec, err := db.TournamentWindow(ctx, "arcade", tour.ID, win0); err != nil || !rec.FinalBoard || !rec.ClosesAt.Equal(win0W.ClosesAt) {
			t.Fatalf("window after the close: %+v, %v", rec, err)
		}
		wantBalance(t, db, "a", "70", "0")
		wantBalance(t, db, "b", "70", "0")
		wantBalance(t, db, "c", "40", "0")
		wantBalance(t, db, "d", "0", "0")
		txns, err := db.Transactions(ctx, "arcade", "a", 10, 0)
		if err != nil || len(txns) != 1 || txns[0].Kind != string(rewards.EntryPrize) || txns[0].Ref != "tournament:snake-daily/2026-12-01T12:00:00Z/rank:1" {
			t.Fatalf("a's transactions %+v, %v", txns, err)
		}
		// The closed board shows the prizes; a score for the closed window changes nothing.
		if got := boardLine(board(t, db, 10, "", "").Rows); got != "1:a:9/1=70 1:b:9/1=70 3:c:8/1=40 4:d:7/1" {
			t.Fatalf("closed board %s", got)
		}
		// Received before end + grace by the receiver's clock, applied after the close.
		clock.Set(win0W.ClosesAt.Add(-time.Second))
		if _, err := db.Record(ctx, []rewards.Inbound{tscore("e", "5", "99", "over", win0.Add(time.Hour))}); err != nil {
			t.Fatal(err)
		}
		clock.Set(win0W.ClosesAt.Add(time.Second))
		// The closer found the window closed already; the waiting event is applied now.
		res, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded}, decideTournament)
		if err != nil || len(res) != 1 || !strings.Contains(res[0].Reason, "window 2026-12-01T12:00:00Z is closed; score not counted") {
			t.Fatalf("applying a score for the closed window: %+v, %v", res, err)
		}
		lb := board(t, db, 10, "", "e")
		if lb.UserRow != nil || len(lb.Rows) != 4 {
			t.Fatalf("a score applied after the close entered the board: %+v", lb.UserRow)
		}
		if err := db.CheckInvariants(ctx, ""); err != nil {
			t.Fatal(err)
		}
	})
}

// A user's own row is ranked from the rank buckets and the rows ahead in the user's own
// bucket; it must agree with the rank the pages give, for scores that share buckets,
// after scores move between buckets.
func TestTournamentOwnRowAgreesWithPages(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		db := storetest.Open(t, dia, storetest.NewClock(win0.Add(time.Hour)).Now)
		var batch []rewards.Inbound
		for i := range 40 {
			// 100, 100.5, 101, 200, …: three share the bucket "100", ties among them.
			v := fmt.Sprintf("%d.%d", 100*(1+i%4)+i%2, i%3)
			batch = append(batch, tscore(fmt.Sprintf("u%02d", i), fmt.Sprint("p", i), v, "over", win0.Add(time.Duration(i)*time.Second)))
		}
		batch = append(batch, tscore("low1", "l1", "5", "over", win0), tscore("low2", "l2", "50", "over", win0))
		recordAndApply(t, db, batch...)
		// Some users better their scores, moving bucket (and one within its bucket).
		recordAndApply(t, db,
			tscore("u00", "q0", "450", "over", win0.Add(time.Hour)),
			tscore("u05", "q5", "150", "over", win0.Add(time.Hour)),
			tscore("u09", "q9", "101.9", "over", win0.Add(time.Hour)),
		)
		all := board(t, db, 500, "", "")
		if len(all.Rows) != 42 {
			t.Fatalf("%d rows", len(all.Rows))
		}
		for _, r := range all.Rows {
			own := board(t, db, 1, "", r.User).UserRow
			if own == nil || own.Rank != r.Rank {
				t.Fatalf("%s: own row %+v, the pages rank it %d", r.User, own, r.Rank)
			}
		}
		// Every other user plays once more, worse: with min_plays 2 only they and the
		// three above are ranked, counted from the rows, not the buckets; and with ties
		// first the tie-breakers order the rows ahead.
		var again []rewards.Inbound
		for i := 0; i < 40; i += 2 {
			again = append(again, tscore(fmt.Sprintf("u%02d", i), fmt.Sprint("r", i), "1", "over", win0.Add(2*time.Hour)))
		}
		recordAndApply(t, db, again...)
		for _, c := range []struct {
			ties     rewards.Ties
			minPlays int64
			ranked   int
		}{{rewards.TiesFirst, 1, 42}, {rewards.TiesSplit, 2, 22}, {rewards.TiesFirst, 2, 22}} {
			tour := dailyTournament()
			tour.Ties, tour.MinPlays = c.ties, c.minPlays
			read := func(limit int, user string) rewards.Leaderboard {
				t.Helper()
				lb, err := db.Leaderboard(context.Background(), rewards.LeaderboardQuery{Property: "arcade", Tournament: tour, Window: win0W,
					Limit: limit, User: user})
				if err != nil {
					t.Fatal(err)
				}
				return lb
			}
			ranks := map[string]int64{}
			for _, r := range read(500, "").Rows {
				ranks[r.User] = r.Rank
			}
			if len(ranks) != c.ranked {
				t.Fatalf("ties %s, min_plays %d: %d ranked, want %d", c.ties, c.minPlays, len(ranks), c.ranked)
			}
			for _, r := range all.Rows {
				own := read(1, r.User).UserRow
				if own == nil || own.Rank != ranks[r.User] { // 0 for a user the pages leave out
					t.Fatalf("ties %s, min_plays %d: %s's own row %+v, the pages rank it %d", c.ties, c.minPlays, r.User, own, ranks[r.User])
				}
			}
		}
	})
}

// Appliers with their own pools apply one flood of scores at once on Postgres (on SQLite
// they queue): every best score and every play is kept, a play reported by two batches
// counts once, and the rank buckets agree with the rows.
func TestTournamentConcurrentAppliers(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(win0.Add(time.Hour))
		u := storetest.URL(t, dia)
		db := storetest.OpenURL(t, u, clock.Now)
		var batch []rewards.Inbound
		for i := range 300 {
			// 10 plays per user, each reported twice (the second time with another
			// timestamp, so as another event), far apart in the inbox so that different
			// batches carry the two reports; best score 100 × user + 9.
			user, play, v := fmt.Sprintf("u%02d", i%30), fmt.Sprint("p", i), fmt.Sprint(100*(i%30)+i/30)
			batch = append(batch, tscore(user, play, v, "over", win0.Add(time.Duration(i)*time.Second)))
		}
		for i := range 300 {
			user, play, v := fmt.Sprintf("u%02d", i%30), fmt.Sprint("p", i), fmt.Sprint(100*(i%30)+i/30)
			batch = append(batch, tscore(user, play, v, "over", win0.Add(time.Duration(i)*time.Second+time.Millisecond)))
		}
		if _, err := db.Record(ctx, batch); err != nil {
			t.Fatal(err)
		}
		appliers := []*store.DB{db, storetest.OpenURL(t, u, clock.Now), storetest.OpenURL(t, u, clock.Now)}
		var wg sync.WaitGroup
		for _, a := range appliers {
			wg.Go(func() {
				for {
					got, err := a.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded, Limit: 40}, decideTournament)
					if err != nil {
						t.Errorf("apply: %v", err)
						return
					}
					if len(got) == 0 {
						return
					}
				}
			})
		}
		wg.Wait()
		all := board(t, db, 500, "", "")
		if len(all.Rows) != 30 {
			t.Fatalf("%d rows", len(all.Rows))
		}
		for i, r := range all.Rows {
			want := fmt.Sprintf("u%02d", 29-i)
			if r.User != want || r.Score.String() != fmt.Sprint(100*(29-i)+9) || r.Plays != 10 || r.Rank != int64(i+1) {
				t.Fatalf("row %d: %+v, want %s with %d and 10 plays", i, r, want, 100*(29-i)+9)
			}
			if own := board(t, db, 1, "", r.User).UserRow; own == nil || own.Rank != r.Rank {
				t.Fatalf("%s: own row %+v, pages rank it %d", r.User, own, r.Rank)
			}
		}
	})
}

// The payout report shows the prizes in credited_prizes, its last column, and every row
// still adds up: closing pending is what the prizes credited.
func TestTournamentPrizesInPayoutReport(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(win0.Add(time.Hour))
		db := storetest.Open(t, dia, clock.Now)
		recordAndApply(t, db,
			tscore("a", "1", "9", "over", win0.Add(time.Minute)),
			tscore("b", "2", "8", "over", win0.Add(2*time.Minute)),
		)
		clock.Set(win0W.ClosesAt)
		if got, err := db.CloseTournamentWindow(ctx, "arcade", dailyTournament(), win0W); err != nil || got.Outcome != rewards.CloseDone {
			t.Fatalf("close: %+v, %v", got, err)
		}
		clock.Set(win0W.ClosesAt.Add(time.Hour))
		got := map[string]rewards.PayoutRow{}
		if _, err := db.PayoutReport(ctx, rewards.ReportQuery{From: win0, To: win0W.ClosesAt.Add(time.Hour), Property: "arcade"},
			func(r rewards.PayoutRow) error { got[r.User] = r; return nil }); err != nil {
			t.Fatal(err)
		}
		for user, want := range map[string]string{"a": "100", "b": "40"} {
			r := got[user]
			if !r.CreditedPrizes.Equal(d(want)) || !r.ClosingPending.Equal(d(want)) || !r.CreditedTargets.IsZero() {
				t.Fatalf("%s: %+v, want credited_prizes %s", user, r.PayoutAmounts, want)
			}
		}
	})
}

// Two score writers of one window on Postgres do not wait for each other: while one
// holds its transaction open after writing its scores (window row share-locked, its
// rank-bucket moves written), another applies a score of the same window in the same
// rank buckets and commits. The closer still waits for the open writer, and ranks its
// score.
func TestTournamentScoreWritersDoNotWait(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		if dia != store.Postgres {
			t.Skip("SQLite has one writer at a time")
		}
		ctx := context.Background()
		clock := storetest.NewClock(win0.Add(time.Hour))
		u := storetest.URL(t, dia)
		db := storetest.OpenURL(t, u, clock.Now)
		other := storetest.OpenURL(t, u, clock.Now)
		closer := storetest.OpenURL(t, u, clock.Now)
		recordAndApply(t, db, tscore("seed", "s", "150", "over", win0.Add(time.Minute)))
		res, err := db.Record(ctx, []rewards.Inbound{
			tscore("ann", "a", "120", "over", win0.Add(2*time.Minute)),
			tscore("bob", "b", "130", "over", win0.Add(3*time.Minute)),
		})
		if err != nil {
			t.Fatal(err)
		}
		held, release := make(chan struct{}), make(chan struct{})
		store.HoldApply(db, held, release)
		first := make(chan error, 1)
		go func() {
			_, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded, IDs: []int64{res[0].EventID}}, decideTournament)
			first <- err
		}()
		<-held
		released := false
		defer func() {
			if !released {
				close(release)
			}
		}()

		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if _, err := other.Apply(wctx, rewards.Claim{Status: rewards.StatusRecorded, IDs: []int64{res[1].EventID}}, decideTournament); err != nil {
			t.Fatalf("a second score writer of the window, while the first is open: %v", err)
		}
		if n, err := store.QueryInt(ctx, db, `SELECT COUNT(DISTINCT shard) FROM tournament_rank_buckets`); err != nil || n != 2 {
			t.Fatalf("the two writers used %d bucket shards, want 2 (%v)", n, err)
		}

		// The closer waits for the writer that is still open.
		clock.Set(win0W.ClosesAt)
		closed := make(chan rewards.WindowClose, 1)
		go func() {
			got, err := closer.CloseTournamentWindow(ctx, "arcade", dailyTournament(), win0W)
			if err != nil {
				t.Errorf("close: %v", err)
			}
			closed <- got
		}()
		// It waits on the window row's lock (the only lock wait here: the open writer is
		// held in Go, not by Postgres), and has not closed.
		deadline := time.Now().Add(30 * time.Second)
		for waiting := int64(0); waiting == 0; {
			select {
			case got := <-closed:
				t.Fatalf("the window closed while a score writer was open: %+v", got)
			default:
			}
			var err error
			if waiting, err = store.QueryInt(ctx, db, `SELECT COUNT(*) FROM pg_stat_activity
				WHERE datname = current_database() AND wait_event_type = 'Lock'`); err != nil {
				t.Fatal(err)
			}
			if waiting == 0 && time.Now().After(deadline) {
				t.Fatal("the closer neither closed nor waited on a lock in 30 s")
			}
		}
		select {
		case got := <-closed:
			t.Fatalf("the window closed while a score writer was open: %+v", got)
		default:
		}
		close(release)
		released = true
		if err := <-first; err != nil {
			t.Fatalf("the first writer: %v", err)
		}
		got := <-closed
		if got.Outcome != rewards.CloseDone || got.Ranked != 3 || !got.Paid.Equal(d("180")) {
			t.Fatalf("close after the writer committed: %+v", got)
		}
		if line := boardLine(board(t, db, 10, "", "").Rows); line != "1:seed:150/1=100 2:bob:130/1=40 3:ann:120/1=40" {
			t.Fatalf("final board %s", line)
		}
	})
}

// The final board is the close's: a config changed after the close (ties, min_plays,
// direction, prizes) changes nothing it shows; a cursor of the live board goes on after
// the close; a user the close did not rank (too few plays) keeps an unranked own row.
// A window closed before the board was kept is ranked from its scores.
func TestTournamentFinalBoardOutlivesConfig(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(win0.Add(time.Hour))
		db := storetest.Open(t, dia, clock.Now)
		recordAndApply(t, db,
			tscore("a", "a1", "9", "over", win0.Add(time.Minute)),
			tscore("a", "a2", "5", "over", win0.Add(2*time.Minute)),
			tscore("b", "b1", "9", "over", win0.Add(3*time.Minute)),
			tscore("c", "c1", "8", "over", win0.Add(4*time.Minute)),
			tscore("c", "c2", "8", "over", win0.Add(5*time.Minute)),
			tscore("d", "d1", "7", "over", win0.Add(6*time.Minute)),
		)
		atClose := dailyTournament()
		atClose.MinPlays = 2 // b and d are not ranked
		read := func(tour rewards.Tournament, limit int, cursor, user string) rewards.Leaderboard {
			t.Helper()
			lb, err := db.Leaderboard(ctx, rewards.LeaderboardQuery{Property: "arcade", Tournament: tour, Window: win0W, Limit: limit,
				Cursor: cursor, User: user})
			if err != nil {
				t.Fatal(err)
			}
			return lb
		}
		p1 := read(atClose, 1, "", "")
		if boardLine(p1.Rows) != "1:a:9/2" || p1.NextCursor == "" {
			t.Fatalf("live first page %s", boardLine(p1.Rows))
		}
		clock.Set(win0W.ClosesAt)
		if got, err := db.CloseTournamentWindow(ctx, "arcade", atClose, win0W); err != nil || got.Outcome != rewards.CloseDone || got.Ranked != 2 {
			t.Fatalf("close: %+v, %v", got, err)
		}
		if p2 := read(atClose, 1, p1.NextCursor, ""); boardLine(p2.Rows) != "2:c:8/2=40" || p2.NextCursor != "" {
			t.Fatalf("the live cursor after the close: %s (next %q)", boardLine(p2.Rows), p2.NextCursor)
		}
		changed := dailyTournament()
		changed.MinPlays, changed.Ties, changed.Direction = 1, rewards.TiesFirst, rewards.Lower
		changed.Prizes = []rewards.Prize{{From: 1, To: 10, Amount: d("1")}}
		for _, tour := range []rewards.Tournament{atClose, changed} {
			all := read(tour, 10, "", "b")
			if got := boardLine(all.Rows); got != "1:a:9/2=100 2:c:8/2=40" {
				t.Fatalf("final board read with min_plays %d, ties %s, %s: %s", tour.MinPlays, tour.Ties, tour.Direction, got)
			}
			if all.UserRow == nil || all.UserRow.Rank != 0 || all.UserRow.Prize != nil || all.UserRow.Plays != 1 {
				t.Fatalf("b's own row %+v", all.UserRow)
			}
			if own := read(tour, 1, "", "c").UserRow; own == nil || own.Rank != 2 || own.Prize == nil || !own.Prize.Equal(d("40")) {
				t.Fatalf("c's own row %+v", own)
			}
		}
		// Read by a config whose grace grew since (end + grace still ahead by it): still
		// the final board.
		longer := win0W
		longer.ClosesAt = longer.ClosesAt.Add(48 * time.Hour)
		lb, err := db.Leaderboard(ctx, rewards.LeaderboardQuery{Property: "arcade", Tournament: changed, Window: longer, Limit: 10, User: "c"})
		if err != nil || boardLine(lb.Rows) != "1:a:9/2=100 2:c:8/2=40" || lb.UserRow == nil || lb.UserRow.Rank != 2 || !lb.Record.FinalBoard {
			t.Fatalf("final board read with a longer grace: %s, own row %+v, %v", boardLine(lb.Rows), lb.UserRow, err)
		}
		// Closed before the final board was kept: ranked from the scores, as before.
		if err := db.ExecRaw(ctx, `UPDATE tournament_windows SET final_board = ?`, false); err != nil {
			t.Fatal(err)
		}
		if got := boardLine(read(dailyTournament(), 10, "", "").Rows); got != "1:a:9/2=100 1:b:9/1 3:c:8/2=40 4:d:7/1" {
			t.Fatalf("a window closed without its board: %s", got)
		}
	})
}

// A window that has begun ends when its row says, whatever the duration says now: a
// score made before the row's end counts though a shorter duration would end the window
// earlier; one made after the row's end is not counted in it, though a longer duration
// would have taken it: it counts in the rest of the longer window, a window of its own.
func TestTournamentWindowEndsAsBegun(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(win0.Add(time.Hour))
		db := storetest.Open(t, dia, clock.Now)
		recordAndApply(t, db, tscore("a", "a1", "9", "over", win0.Add(time.Minute)))
		// The duration shrinks to 6 hours: a score made 10 hours in still counts, in the
		// window that began for 24.
		shorter := func(k rewards.Kept) rewards.Decision {
			dec := decideTournament(k)
			dec.Rules.Tournaments[0].Duration = 6 * time.Hour
			return dec
		}
		clock.Set(win0.Add(10 * time.Hour))
		res, err := db.Record(ctx, []rewards.Inbound{tscore("c", "c1", "20", "over", win0.Add(10*time.Hour))})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded}, shorter); err != nil {
			t.Fatal(err)
		}
		if r := reasonOf(t, db, res[0].EventID); !strings.Contains(r, "counted in window 2026-12-01T12:00:00Z") {
			t.Fatalf("reason of a score after the new duration's end: %q", r)
		}
		// It grows to 48 hours, a window every other day: a score made after the row's
		// end counts in the rest of the 48 hours, not in win0.
		longer, _ := everyOtherDay()
		clock.Set(win0W.End.Add(10 * time.Minute))
		res, err = db.Record(ctx, []rewards.Inbound{tscore("b", "b1", "50", "over", win0W.End.Add(5*time.Minute))})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded}, longer); err != nil {
			t.Fatal(err)
		}
		if r := reasonOf(t, db, res[0].EventID); !strings.Contains(r, "counted in window 2026-12-02T12:00:00Z") {
			t.Fatalf("reason of a score after the row's end: %q", r)
		}
		if got := boardLine(board(t, db, 10, "", "").Rows); got != "1:c:20/1 2:a:9/1" {
			t.Fatalf("board %s", got)
		}
	})
}

// A window in which no score counted by end + grace ended with nothing to rank or pay.
// A score received in time but quarantined then, replayed after that, does not open it
// (the closer would pay it in full to whoever was replayed); a replayed score of a window
// still running counts as any score. Events received in time that still wait for the
// applier but cannot count in the window (a session, a score of another game) do not
// keep it closing: before, they let zed's replay open it alone and take the pool.
func TestTournamentReplayDoesNotOpenAnEndedWindow(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(win0.Add(time.Hour))
		db := storetest.Open(t, dia, clock.Now)
		notReady := quarantining("config not ready")
		record := func(in rewards.Inbound) int64 {
			t.Helper()
			res, err := db.Record(ctx, []rewards.Inbound{in})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded, IDs: []int64{res[0].EventID}}, notReady); err != nil {
				t.Fatal(err)
			}
			return res[0].EventID
		}
		zed := record(tscore("zed", "z1", "5", "over", win0.Add(time.Hour)))
		other := tscore("ann", "a9", "50", "over", win0.Add(time.Hour))
		other.Event.Score.Game = "another-game"
		if _, err := db.Record(ctx, []rewards.Inbound{in(session("ann", "s-ann", "0.001", 60)), other}); err != nil {
			t.Fatal(err) // left waiting for the applier until the end
		}
		// The next day's window runs; win0's grace ended 15 minutes ago, with no score.
		clock.Set(win0W.ClosesAt.Add(15 * time.Minute))
		amy := record(tscore("amy", "a1", "7", "over", win0W.ClosesAt.Add(10*time.Minute)))
		clock.Set(win0W.ClosesAt.Add(20 * time.Minute)) // both replayed while the next window runs
		for _, id := range []int64{zed, amy} {
			if got, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusQuarantined, IDs: []int64{id}}, decideTournament); err != nil || len(got) != 1 {
				t.Fatalf("replay %d: %+v %v", id, got, err)
			}
		}
		if r := reasonOf(t, db, zed); !strings.Contains(r, "a replayed score does not count in it") {
			t.Fatalf("zed's replay after win0 ended: %q", r)
		}
		if r := reasonOf(t, db, amy); !strings.Contains(r, "counted in window "+win0W.End.Format(time.RFC3339)) {
			t.Fatalf("amy's replay into the next window: %q", r)
		}
		// Only amy's window is left to close, once it ends; win0 never pays.
		open, err := db.OpenTournamentWindows(ctx, clock.Now().Add(72*time.Hour))
		if err != nil || len(open) != 1 || !open[0].Start.Equal(win0W.End) {
			t.Fatalf("windows to close after the replays: %+v %v", open, err)
		}
		got, err := db.CloseTournamentWindow(ctx, "arcade", dailyTournament(), win0W)
		if err != nil || len(got.Awards) != 0 || !got.Paid.IsZero() {
			t.Fatalf("closing win0: %+v %v", got, err)
		}
		wantBalance(t, db, "zed", "0", "0")
	})
}

// A window ranks in the direction it was begun with: flipping the config to lower-is-
// better mid-window applies from the next window, and the open window's scores keep
// being compared as before (a mix of both orders paid the wrong users).
func TestTournamentDirectionAsBegun(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(win0.Add(time.Hour))
		db := storetest.Open(t, dia, clock.Now)
		recordAndApply(t, db, tscore("ann", "a1", "10", "over", win0.Add(time.Hour)), tscore("bob", "b1", "50", "over", win0.Add(time.Hour)))
		lower := func(k rewards.Kept) rewards.Decision {
			d := decideTournament(k)
			d.Rules.Tournaments[0].Direction = rewards.Lower
			return d
		}
		clock.Set(win0.Add(2 * time.Hour))
		if _, err := db.Record(ctx, []rewards.Inbound{tscore("cat", "c1", "30", "over", win0.Add(2*time.Hour)),
			tscore("bob", "b2", "60", "over", win0.Add(2*time.Hour))}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded}, lower); err != nil {
			t.Fatal(err)
		}
		if got := boardLine(board(t, db, 10, "", "").Rows); got != "1:bob:60/2 2:cat:30/1 3:ann:10/1" {
			t.Fatalf("leaderboard after the flip %s, want higher-is-better as the window began", got)
		}
		clock.Set(win0W.ClosesAt.Add(time.Minute))
		got, err := db.CloseTournamentWindow(ctx, "arcade", dailyTournament(), win0W)
		if err != nil || got.Outcome != rewards.CloseDone || !got.Paid.Equal(d("180")) {
			t.Fatalf("close: %+v %v", got, err)
		}
		wantBalance(t, db, "bob", "100", "0")
		wantBalance(t, db, "cat", "40", "0")
		wantBalance(t, db, "ann", "40", "0")
		// The next window begins with the new direction: the lower score ranks first.
		clock.Set(win0W.End.Add(time.Hour))
		if _, err := db.Record(ctx, []rewards.Inbound{tscore("ann", "a3", "10", "over", win0W.End.Add(time.Hour)),
			tscore("bob", "b3", "50", "over", win0W.End.Add(time.Hour))}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded}, lower); err != nil {
			t.Fatal(err)
		}
		next := rewards.Window{Start: win0W.End, End: win0W.End.Add(24 * time.Hour), ClosesAt: win0W.End.Add(24*time.Hour + 15*time.Minute)}
		flipped := dailyTournament()
		flipped.Direction = rewards.Lower
		lb, err := db.Leaderboard(ctx, rewards.LeaderboardQuery{Property: "arcade", Tournament: flipped, Window: next, Limit: 10})
		if err != nil || boardLine(lb.Rows) != "1:ann:10/1 2:bob:50/1" {
			t.Fatalf("next window: %s %v", boardLine(lb.Rows), err)
		}
	})
}

// While a score received in time still waits for the applier, a window without a row is
// closing, not over: a replayed score counts in it, as it would had the waiting score
// been applied first, and the closer ranks both.
func TestTournamentReplayWhileAScoreWaits(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(win0.Add(time.Hour))
		db := storetest.Open(t, dia, clock.Now)
		notReady := quarantining("config not ready")
		res, err := db.Record(ctx, []rewards.Inbound{tscore("zed", "z1", "9", "over", win0.Add(time.Hour))})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded}, notReady); err != nil {
			t.Fatal(err)
		}
		clock.Set(win0W.ClosesAt.Add(-time.Minute)) // bob's score arrives in time; the applier lags
		if _, err := db.Record(ctx, []rewards.Inbound{tscore("bob", "b1", "5", "over", win0W.End.Add(-time.Hour))}); err != nil {
			t.Fatal(err)
		}
		clock.Set(win0W.ClosesAt.Add(time.Minute))
		if got, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusQuarantined, IDs: []int64{res[0].EventID}}, decideTournament); err != nil || len(got) != 1 {
			t.Fatalf("replay: %+v %v", got, err)
		}
		if r := reasonOf(t, db, res[0].EventID); !strings.Contains(r, "counted in window") {
			t.Fatalf("zed's replay while bob's score waits: %q", r)
		}
		if _, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded}, decideTournament); err != nil {
			t.Fatal(err)
		}
		got, err := db.CloseTournamentWindow(ctx, "arcade", dailyTournament(), win0W)
		if err != nil || got.Outcome != rewards.CloseDone || got.Ranked != 2 || !got.Paid.Equal(d("140")) {
			t.Fatalf("close: %+v %v", got, err)
		}
		wantBalance(t, db, "zed", "100", "0")
		wantBalance(t, db, "bob", "40", "0")
	})
}

// After the schedule changes, the new schedule's window may overlap a window begun (and
// closed) under the old one. A score made inside the old window belongs to it: reported
// after its close it is late, not counted again in the new window; one made after the
// old window's end counts in the new one.
func TestTournamentScheduleChangeDoesNotCountAScoreTwice(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock, db := win0Closed(t, dia)
		// Now daily from 18:00: the new window began at 18:00 the day before, inside win0.
		evening := dailyAt(18)
		clock.Set(win0W.ClosesAt.Add(5 * time.Minute))
		res, err := db.Record(ctx, []rewards.Inbound{
			tscore("bob", "b1", "99", "over", win0W.End.Add(-time.Hour)),  // made in win0, reported after its close
			tscore("cat", "c1", "30", "over", win0W.End.Add(time.Minute)), // made after win0's end
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded}, evening); err != nil {
			t.Fatal(err)
		}
		if r := reasonOf(t, db, res[0].EventID); !strings.Contains(r, "is in window "+win0.Format(time.RFC3339)) || strings.Contains(r, "counted in window") {
			t.Fatalf("bob's score made in win0: %q", r)
		}
		if r := reasonOf(t, db, res[1].EventID); !strings.Contains(r, "counted in window "+win0.Add(6*time.Hour).Format(time.RFC3339)) {
			t.Fatalf("cat's score made after win0: %q", r)
		}
	})
}

// While the old schedule's window is still open beside the new schedule's, a score made
// in both belongs to the one that began first.
func TestTournamentScheduleChangeWhileTheOldWindowRuns(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		clock := storetest.NewClock(win0.Add(time.Hour))
		db := storetest.Open(t, dia, clock.Now)
		recordAndApply(t, db, tscore("ann", "a1", "10", "over", win0.Add(time.Hour)))
		apply := applying(t, db, dailyAt(18))
		// win0 is in its grace; a score made after its end begins the new window (18:00).
		clock.Set(win0W.End.Add(2 * time.Minute))
		cat := apply(tscore("cat", "c1", "30", "over", win0W.End.Add(time.Minute)))
		if r := reasonOf(t, db, cat); !strings.Contains(r, "counted in window "+win0.Add(6*time.Hour).Format(time.RFC3339)) {
			t.Fatalf("cat's score after win0's end: %q", r)
		}
		// Made at 20:00, inside both: it belongs to win0, still open.
		dan := apply(tscore("dan", "d1", "20", "over", win0.Add(8*time.Hour)))
		if r := reasonOf(t, db, dan); !strings.Contains(r, "counted in window "+win0.Format(time.RFC3339)) {
			t.Fatalf("dan's score made in both windows: %q", r)
		}
	})
}

// win0Closed opens a store whose win0 ranked ann alone and closed, its clock a minute
// past that close.
func win0Closed(t *testing.T, dia store.Dialect) (*storetest.Clock, *store.DB) {
	t.Helper()
	clock := storetest.NewClock(win0.Add(time.Hour))
	db := storetest.Open(t, dia, clock.Now)
	recordAndApply(t, db, tscore("ann", "a1", "10", "over", win0.Add(time.Hour)))
	clock.Set(win0W.ClosesAt.Add(time.Minute))
	if got, err := db.CloseTournamentWindow(context.Background(), "arcade", dailyTournament(), win0W); err != nil || got.Outcome != rewards.CloseDone {
		t.Fatalf("close: %+v %v", got, err)
	}
	return clock, db
}

// dailyAt is decideTournament with the daily windows starting at hour (UTC).
func dailyAt(hour int) rewards.Decider {
	return func(k rewards.Kept) rewards.Decision {
		d := decideTournament(k)
		d.Rules.Tournaments[0].Next = tournamentAt(hour).Next
		return d
	}
}

// tournamentAt is dailyTournament with its daily windows starting at hour (UTC).
func tournamentAt(hour int) rewards.Tournament {
	tour := dailyTournament()
	tour.Next = func(t time.Time) time.Time {
		n := time.Date(t.Year(), t.Month(), t.Day(), hour, 0, 0, 0, time.UTC)
		if !n.After(t) {
			n = n.AddDate(0, 0, 1)
		}
		return n
	}
	return tour
}

// applying records an event and applies the backlog with decide, returning its id.
func applying(t *testing.T, db *store.DB, decide rewards.Decider) func(rewards.Inbound) int64 {
	return func(in rewards.Inbound) int64 {
		t.Helper()
		ctx := context.Background()
		res, err := db.Record(ctx, []rewards.Inbound{in})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded}, decide); err != nil {
			t.Fatal(err)
		}
		return res[0].EventID
	}
}

// A new schedule's window that starts earlier and runs longer (daily to weekly) holds a
// window of the old one: a score made inside the old window, closed and paid, and
// reported late, is not counted in the new one.
func TestTournamentScheduleChangeToALongerWindow(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		_, db := win0Closed(t, dia)
		res, err := db.Record(ctx, []rewards.Inbound{tscore("bob", "b1", "99", "over", win0W.End.Add(-time.Hour))})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded}, weekly); err != nil {
			t.Fatal(err)
		}
		if r := reasonOf(t, db, res[0].EventID); !strings.Contains(r, "is in window "+win0.Format(time.RFC3339)) {
			t.Fatalf("bob's score made in the closed daily window: %q", r)
		}
	})
}

// A new schedule's window that starts earlier than the old one's, which is still open,
// and has begun (a score made before the old window started): scores made in both
// still go to the old window, to its end and grace, not to the one begun later.
func TestTournamentScheduleChangeToAnEarlierStart(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(win0.Add(time.Hour))
		db := storetest.Open(t, dia, clock.Now)
		recordAndApply(t, db, tscore("ann", "a1", "10", "over", win0.Add(time.Hour))) // win0: 12:00 to 12:00
		early := dailyAt(6)                                                           // now 06:00 to 06:00
		apply := func(in rewards.Inbound) int64 {
			t.Helper()
			res, err := db.Record(ctx, []rewards.Inbound{in})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded}, early); err != nil {
				t.Fatal(err)
			}
			return res[0].EventID
		}
		clock.Set(win0.Add(2 * time.Hour))
		newWin := win0.Add(-6 * time.Hour)
		if r := reasonOf(t, db, apply(tscore("cat", "c1", "5", "over", win0.Add(-5*time.Hour)))); !strings.Contains(r, "counted in window "+newWin.Format(time.RFC3339)) {
			t.Fatalf("cat's score before win0 began: %q", r)
		}
		clock.Set(win0.Add(3 * time.Hour))
		if r := reasonOf(t, db, apply(tscore("dan", "d1", "20", "over", win0.Add(3*time.Hour)))); !strings.Contains(r, "counted in window "+win0.Format(time.RFC3339)) {
			t.Fatalf("dan's score made in both: %q", r)
		}
		// Made at 20:00 in both, reported after the new window's grace but in win0's.
		clock.Set(win0W.End.Add(-4 * time.Hour))
		if r := reasonOf(t, db, apply(tscore("eve", "e1", "30", "over", win0.Add(8*time.Hour)))); !strings.Contains(r, "counted in window "+win0.Format(time.RFC3339)) {
			t.Fatalf("eve's late report in win0's time: %q", r)
		}
	})
}

// Windows of the old and the new schedule begun at the same instant: the one that starts
// first counts as begun first, both when a score is placed and when it is checked, so
// every score made in both goes to the same window.
func TestTournamentScheduleChangeWindowsBegunTogether(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(win0.Add(4 * time.Hour)) // frozen: every row is written at 16:00
		db := storetest.Open(t, dia, clock.Now)
		recordAndApply(t, db, tscore("ann", "a1", "10", "over", win0.Add(time.Hour))) // win0: 12:00 to 12:00
		early := dailyAt(6)
		apply := func(in rewards.Inbound) int64 {
			t.Helper()
			res, err := db.Record(ctx, []rewards.Inbound{in})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded}, early); err != nil {
				t.Fatal(err)
			}
			return res[0].EventID
		}
		newWin := win0.Add(-6 * time.Hour)
		apply(tscore("cat", "c1", "5", "over", win0.Add(-5*time.Hour))) // begins the 06:00 window, at 16:00 too
		if r := reasonOf(t, db, apply(tscore("dan", "d1", "20", "over", win0.Add(3*time.Hour)))); !strings.Contains(r, "counted in window "+newWin.Format(time.RFC3339)) {
			t.Fatalf("dan's score made in both: %q", r)
		}
		// The 06:00 window closes; a score made in both, reported after, is late for it.
		newW := rewards.Window{Start: newWin, End: newWin.Add(24 * time.Hour), ClosesAt: newWin.Add(24*time.Hour + 15*time.Minute)}
		clock.Set(newW.ClosesAt.Add(time.Minute))
		if got, err := db.CloseTournamentWindow(ctx, "arcade", early(rewards.Kept{}).Rules.Tournaments[0], newW); err != nil || got.Outcome != rewards.CloseDone {
			t.Fatalf("close the 06:00 window: %+v %v", got, err)
		}
		if r := reasonOf(t, db, apply(tscore("eve", "e1", "30", "over", win0.Add(8*time.Hour)))); strings.Contains(r, "counted in window") {
			t.Fatalf("eve's late score made in both: %q", r)
		}
	})
}

// A close ranks without the scores of its game kept quarantined, and says how many there
// were, so the closer can warn: a replay after the close does not count them.
// Quarantined events of other kinds or games, or received before the window began, are
// not counted.
func TestTournamentCloseCountsQuarantinedScores(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(win0.Add(-48 * time.Hour))
		db := storetest.Open(t, dia, clock.Now)
		// Kept quarantined, but received two days before the window began: not its score.
		if _, err := db.Record(ctx, []rewards.Inbound{tscore("old", "o1", "99", "over", win0.Add(-48*time.Hour))}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded}, quarantining("forged")); err != nil {
			t.Fatal(err)
		}
		clock.Set(win0.Add(time.Hour))
		recordAndApply(t, db, tscore("ann", "a1", "10", "over", win0.Add(time.Hour)))
		other := tscore("cat", "c1", "50", "over", win0.Add(time.Hour))
		other.Event.Score.Game = "another-game"
		if _, err := db.Record(ctx, []rewards.Inbound{tscore("zed", "z1", "90", "over", win0.Add(time.Hour)), other,
			in(session("bob", "s-bob", "0.001", 60))}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded}, quarantining("config not ready")); err != nil {
			t.Fatal(err)
		}
		clock.Set(win0W.ClosesAt.Add(time.Minute))
		got, err := db.CloseTournamentWindow(ctx, "arcade", dailyTournament(), win0W)
		if err != nil || got.Outcome != rewards.CloseDone || got.Ranked != 1 || got.Quarantined != 1 {
			t.Fatalf("close: %+v %v, want ann ranked and zed's score counted as quarantined", got, err)
		}
	})
}

// A window ranks the game it began with (migration 00031), so its close waits for that
// game's scores and counts that game's quarantined ones, whatever game the config names
// by then: it counted the configured game's, which never count there.
func TestTournamentCloseCountsTheWindowsGame(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(win0.Add(time.Hour))
		db := storetest.Open(t, dia, clock.Now)
		recordAndApply(t, db, tscore("ann", "a1", "10", "over", win0.Add(time.Hour)))
		if _, err := db.Record(ctx, []rewards.Inbound{tscore("zed", "z1", "90", "over", win0.Add(time.Hour)),
			tscore("yan", "y1", "80", "over", win0.Add(time.Hour))}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded}, quarantining("config not ready")); err != nil {
			t.Fatal(err)
		}
		moved := dailyTournament()
		moved.Game = "Other_Game"
		clock.Set(win0W.ClosesAt.Add(time.Minute))
		got, err := db.CloseTournamentWindow(ctx, "arcade", moved, win0W)
		if err != nil || got.Outcome != rewards.CloseDone || got.Ranked != 1 || got.Quarantined != 2 {
			t.Fatalf("close after the game changed: %+v %v, want ann ranked and the window's game's 2 quarantined scores counted", got, err)
		}
	})
}

// A score report (play, state, score) counts in the first window it was counted in.
// Gamezop redelivers a report with a new timestamp; one that falls in the next window is
// not counted there, where it ranked, and was paid, a second time: whether it comes
// after the first was applied, after its window closed, or in the same batch. Another
// report of the play (a new score) made in the next window counts there.
func TestReportRedeliveredIntoTheNextWindowCountsOnce(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(win0W.End.Add(-time.Second))
		db := storetest.Open(t, dia, clock.Now)
		tour := dailyTournament()
		recordAndApply(t, db, tscore("ann", "a1", "500", "over", win0W.End.Add(-2*time.Second)))
		recordAndApply(t, db, tscore("bob", "b1", "100", "over", win0W.End.Add(-3*time.Second)))
		clock.Set(win0W.End.Add(6 * time.Second))
		res := recordAndApply(t, db,
			tscore("ann", "a1", "500", "over", win0W.End.Add(5*time.Second)),  // the redelivery, with its new timestamp
			tscore("cat", "c1", "300", "over", win0W.End.Add(-4*time.Second)), // cat's report and its redelivery, one batch
			tscore("cat", "c1", "300", "over", win0W.End.Add(4*time.Second)),
			tscore("bob", "b1", "700", "over", win0W.End.Add(3*time.Second))) // bob's play, a new score: another report
		for i, want := range []string{"this report of play a1 was counted in window " + win0W.Start.Format(time.RFC3339),
			"counted in window " + win0W.Start.Format(time.RFC3339), "this report of play c1 was counted in window " + win0W.Start.Format(time.RFC3339),
			"counted in window " + win0W.End.Format(time.RFC3339)} {
			if r := reasonOf(t, db, res[i].EventID); !strings.Contains(r, want) {
				t.Fatalf("event %d's reason: %s, want %q", i, r, want)
			}
		}
		clock.Set(win0W.ClosesAt.Add(time.Minute))
		if got, err := db.CloseTournamentWindow(ctx, "arcade", tour, win0W); err != nil || got.Outcome != rewards.CloseDone || got.Ranked != 3 {
			t.Fatalf("close 0: %+v %v", got, err)
		}
		// After the close too: a redelivery of the same report then is known.
		res = recordAndApply(t, db, tscore("ann", "a1", "500", "over", clock.Now()))
		if r := reasonOf(t, db, res[0].EventID); !strings.Contains(r, "this report of play a1 was counted in window") {
			t.Fatalf("a redelivery after the close: %s", r)
		}
		win1 := rewards.Window{Start: win0W.End, End: win0W.End.Add(24 * time.Hour), ClosesAt: win0W.End.Add(24*time.Hour + 15*time.Minute)}
		clock.Set(win1.ClosesAt.Add(time.Minute))
		got, err := db.CloseTournamentWindow(ctx, "arcade", tour, win1)
		if err != nil || got.Ranked != 1 || len(got.Awards) != 1 || got.Awards[0].User != "bob" {
			t.Fatalf("window 1 ranked the reports again: %+v %v", got, err)
		}
		wantBalance(t, db, "ann", "100", "0") // window 0's first prize, once
		if err := db.CheckInvariants(ctx, "arcade"); err != nil {
			t.Fatal(err)
		}
		// A close a week later forgets the reports counted more than a week before it.
		win8 := rewards.Window{Start: win0W.Start.AddDate(0, 0, 8), End: win0W.End.AddDate(0, 0, 8), ClosesAt: win0W.ClosesAt.AddDate(0, 0, 8)}
		recordAndApply(t, db, tscore("dan", "d1", "1", "over", win8.Start.Add(time.Hour)))
		clock.Set(win8.ClosesAt.Add(time.Minute))
		if _, err := db.CloseTournamentWindow(ctx, "arcade", tour, win8); err != nil {
			t.Fatal(err)
		}
		if n, err := store.QueryInt(ctx, db, `SELECT COUNT(*) FROM tournament_reports`); err != nil || n != 1 {
			t.Fatalf("%d reports a week later, %v; want dan's", n, err)
		}
	})
}

// Two appliers counting a report and its redelivery (in two windows) at once: the one
// that commits second finds the first's row and does not count it again. Each counted in
// its own window before: the key held the window, so neither waited for the other.
func TestReportCountedByTwoAppliersAtOnce(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(win0W.End.Add(6 * time.Second))
	db := storetest.Open(t, store.Postgres, clock.Now)
	rec, err := db.Record(ctx, []rewards.Inbound{tscore("ann", "a1", "500", "over", win0W.End.Add(-2*time.Second)),
		tscore("ann", "a1", "500", "over", win0W.End.Add(5*time.Second))})
	if err != nil {
		t.Fatal(err)
	}
	held, release := make(chan struct{}), make(chan struct{})
	store.HoldAfterApply(db, held, release)
	first := make(chan error, 1)
	go func() {
		_, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded, IDs: []int64{rec[0].EventID}}, decideTournament)
		first <- err
	}()
	<-held
	second := make(chan error, 1)
	go func() {
		_, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded, IDs: []int64{rec[1].EventID}}, decideTournament)
		second <- err
	}()
	// Released once the second waits on the first's uncommitted report row (or, as
	// before the fix, has finished without waiting).
	var secondErr error
	secondDone := false
	for deadline := time.Now().Add(10 * time.Second); !secondDone && time.Now().Before(deadline); {
		select {
		case secondErr = <-second:
			secondDone = true
		default:
			n, err := store.QueryInt(ctx, db, `SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`)
			if err != nil {
				t.Fatal(err)
			}
			if n > 0 {
				deadline = time.Now() // waiting: release the first
				continue
			}
			time.Sleep(time.Millisecond) // polls the condition above
		}
	}
	close(release)
	if !secondDone {
		secondErr = <-second
	}
	if err := errors.Join(<-first, secondErr); err != nil {
		t.Fatal(err)
	}
	if r := reasonOf(t, db, rec[1].EventID); !strings.Contains(r, "this report of play a1 was counted in window "+win0W.Start.Format(time.RFC3339)) {
		t.Fatalf("the redelivery's reason: %s", r)
	}
	if n, err := store.QueryInt(ctx, db, `SELECT COUNT(*) FROM tournament_scores WHERE user_id = 'ann'`); err != nil || n != 1 {
		t.Fatalf("ann is on %d boards for one report, %v", n, err)
	}
}

// A redelivery applied before its original (another applier got there first, or the
// original was quarantined and replayed later) does not take the original's window from
// it: the original counts in its own window and the pin moves there. Window 0's prize
// went to the runner-up.
func TestOriginalAppliedAfterItsRedeliveryKeepsItsWindow(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(win0W.End.Add(6 * time.Second))
		db := storetest.Open(t, dia, clock.Now)
		rec, err := db.Record(ctx, []rewards.Inbound{
			tscore("bob", "b1", "100", "over", win0W.End.Add(-9*time.Second)),
			tscore("ann", "a1", "500", "over", win0W.End.Add(-2*time.Second)), // the original
			tscore("ann", "a1", "500", "over", win0W.End.Add(5*time.Second)),  // its redelivery
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range []int{0, 2, 1} { // the redelivery first
			if _, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded, IDs: []int64{rec[i].EventID}}, decideTournament); err != nil {
				t.Fatal(err)
			}
		}
		if r := reasonOf(t, db, rec[1].EventID); !strings.Contains(r, "counted in window "+win0W.Start.Format(time.RFC3339)) {
			t.Fatalf("the original's reason: %s", r)
		}
		clock.Set(win0W.ClosesAt.Add(time.Minute))
		got, err := db.CloseTournamentWindow(ctx, "arcade", dailyTournament(), win0W)
		if err != nil || len(got.Awards) == 0 || got.Awards[0].User != "ann" {
			t.Fatalf("window 0's awards: %+v %v; want ann first", got.Awards, err)
		}
		// A later copy in window 1 now finds the pin in window 0.
		res := recordAndApply(t, db, tscore("ann", "a1", "500", "over", clock.Now()))
		if r := reasonOf(t, db, res[0].EventID); !strings.Contains(r, "this report of play a1 was counted in window "+win0W.Start.Format(time.RFC3339)) {
			t.Fatalf("a later copy's reason: %s", r)
		}
	})
}

// A cup whose start has a fraction finer than a microsecond (RFC 3339 allows it; the
// databases keep microseconds) counts the scores of the batch that begins its window:
// the pin, stored at microseconds, did not equal the window's start, and they were
// dropped as counted elsewhere.
func TestCupStartingBetweenMicrosecondsCountsItsFirstScores(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(win0.Add(time.Hour))
		db := storetest.Open(t, dia, clock.Now)
		cup := dailyTournament()
		cup.ID, cup.Next, cup.Duration = "cup", nil, 0
		cup.Start, cup.End = win0.Add(100*time.Nanosecond), win0.Add(24*time.Hour)
		decide := func(k rewards.Kept) rewards.Decision {
			r := testRules()
			r.Targets, r.Tournaments = nil, []rewards.Tournament{cup}
			return rewards.Decision{Event: k.Event, Rules: &r}
		}
		for _, s := range []rewards.Inbound{tscore("ann", "a1", "500", "over", win0.Add(time.Minute)),
			tscore("bob", "b1", "400", "over", win0.Add(2*time.Minute))} { // two batches
			if _, err := db.Record(ctx, []rewards.Inbound{s}); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded}, decide); err != nil {
				t.Fatal(err)
			}
		}
		if n, err := store.QueryInt(ctx, db, `SELECT COUNT(*) FROM tournament_scores`); err != nil || n != 2 {
			t.Fatalf("%d scores on the cup's board, %v; want ann's and bob's", n, err)
		}
		// Its board pages: the cursor names the start to the nanosecond (at microseconds
		// it named no window SQLite holds, and page 2 was a 400).
		q := rewards.LeaderboardQuery{Property: "arcade", Tournament: cup, Limit: 1}
		first, _, _, err := db.CurrentLeaderboard(ctx, q, clock.Now())
		if err != nil || boardLine(first.Rows) != "1:ann:500/1" {
			t.Fatalf("page 1: %s, %v", boardLine(first.Rows), err)
		}
		q.Cursor = first.NextCursor
		page, current, ok, err := db.CurrentLeaderboard(ctx, q, clock.Now())
		if err != nil || !ok || boardLine(page.Rows) != "2:bob:400/1" {
			t.Fatalf("page 2: %s, %v, %v", boardLine(page.Rows), ok, err)
		}
		// On Postgres the window is also named by its record's start, cut to the
		// microsecond: a cursor taken under one name pages the board under the other.
		configured, _ := cup.WindowStarting(cup.Start)
		for _, c := range []struct{ from, to rewards.Window }{{current, configured}, {configured, current}} {
			q.Cursor, q.Window = "", c.from
			first, err := db.Leaderboard(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			q.Cursor, q.Window = first.NextCursor, c.to
			if page, err := db.Leaderboard(ctx, q); err != nil || boardLine(page.Rows) != "2:bob:400/1" {
				t.Fatalf("page 2 of the window starting %s, by a cursor of %s: %s, %v", c.to.Start, c.from.Start, boardLine(page.Rows), err)
			}
		}
	})
}

// Two reports of one play alike but for the play's duration so far (a level-based game
// reporting the same score a level later) are two reports: the later one, made in the
// next window, counts there. A redelivery repeats the duration too.
func TestReportsOfAPlayDifferingInDurationAreTwo(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		clock := storetest.NewClock(win0W.End.Add(time.Hour))
		db := storetest.Open(t, dia, clock.Now)
		at := func(in rewards.Inbound, ms int64) rewards.Inbound {
			in.Event.Score.Duration = ms
			in.Event.DedupeKey += fmt.Sprint("/", ms)
			return in
		}
		recordAndApply(t, db, at(tscore("ann", "a1", "500", "over", win0W.End.Add(-time.Minute)), 60000))
		res := recordAndApply(t, db, at(tscore("ann", "a1", "500", "over", win0W.End.Add(time.Minute)), 180000))
		if r := reasonOf(t, db, res[0].EventID); !strings.Contains(r, "counted in window "+win0W.End.Format(time.RFC3339)) {
			t.Fatalf("the later report: %s", r)
		}
	})
}

// A window whose prizes add up past 10^20 closes and pays (its paid total overflowed
// NUMERIC(38,18) on Postgres, and the close failed on every attempt).
func TestTournamentPaidPastTwentyDigits(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(win0.Add(time.Hour))
		db := storetest.Open(t, dia, clock.Now)
		recordAndApply(t, db,
			tscore("a", "1", "9", "over", win0.Add(time.Minute)),
			tscore("b", "2", "8", "over", win0.Add(2*time.Minute)),
		)
		tour := dailyTournament()
		tour.Prizes = []rewards.Prize{{From: 1, To: 1, Amount: d("60000000000000000000")}, {From: 2, To: 3, Amount: d("60000000000000000000")}}
		clock.Set(win0W.ClosesAt)
		if got, err := db.CloseTournamentWindow(ctx, "arcade", tour, win0W); err != nil || got.Outcome != rewards.CloseDone {
			t.Fatalf("close: %+v, %v", got, err)
		}
		wantBalance(t, db, "a", "60000000000000000000", "0")
		wantBalance(t, db, "b", "60000000000000000000", "0")
	})
}

// A replay of quarantined scores and the close of their window can wait for each other
// in a cycle: the replay locks its wallets and then the window, the closer the window and
// then its winners' wallets, and the closer waits only for recorded scores, not for
// quarantined ones being replayed. Postgres then aborts the one that waited first and
// the store tries it again; both complete, and the close pays what the board says when it
// commits. (A lock taken ahead of the wallets for replays was tried, and made other
// cycles: with a one-window tournament's extension, and with replicas on two configs.)
func TestReplayAndWindowCloseMeetingInADeadlockBothComplete(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(win0.Add(time.Hour))
	db := storetest.Open(t, store.Postgres, clock.Now)
	var (
		mu      sync.Mutex
		retries []error
	)
	db.OnRetry(func(err error) {
		mu.Lock()
		defer mu.Unlock()
		retries = append(retries, err)
	})
	recordAndApply(t, db, tscore("ann", "a1", "500", "over", win0.Add(30*time.Minute)), in(session("ann", "s-0", "0.0001", 60)))
	if _, err := db.Record(ctx, []rewards.Inbound{in(session("ann", "s-1", "0.0001", 60)),
		tscore("bob", "b1", "400", "over", win0.Add(40*time.Minute))}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded}, quarantining("held for the test")); err != nil {
		t.Fatal(err)
	}
	clock.Set(win0W.ClosesAt.Add(time.Minute))
	// The replay stops while it holds ann's wallet (the winner's): its upsert of the
	// wallet waits on an advisory lock the test holds.
	for _, q := range []string{
		`CREATE FUNCTION zz_hold_ann() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN PERFORM pg_advisory_xact_lock_shared(4242); RETURN NEW; END $$`,
		`CREATE TRIGGER zz_hold_ann BEFORE UPDATE ON wallets FOR EACH ROW WHEN (NEW.user_id = 'ann') EXECUTE FUNCTION zz_hold_ann()`,
	} {
		if err := db.ExecRaw(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	waiting := func(n int64, what string) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) { // polls the condition
			got, err := store.QueryInt(ctx, db, `SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type IN ('Lock', 'Advisory')`)
			if err != nil {
				t.Error(err)
				return
			}
			if got >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("%s: %d transactions waiting on a lock, want %d", what, got, n)
				return
			}
		}
	}
	replayed, closed := make(chan error, 1), make(chan error, 1)
	var got rewards.WindowClose
	if err := db.HoldAdvisoryLock(ctx, 4242, func() {
		go func() {
			_, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusQuarantined}, decideTournament)
			replayed <- err
		}()
		waiting(1, "the replay, holding ann's wallet")
		go func() {
			var err error
			got, err = db.CloseTournamentWindow(ctx, "arcade", dailyTournament(), win0W)
			closed <- err
		}()
		waiting(2, "the closer, waiting for ann's wallet")
	}); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(<-replayed, <-closed); err != nil {
		t.Fatalf("the replay or the close failed: %v", err)
	}
	mu.Lock()
	if len(retries) != 1 {
		t.Errorf("retries %v, want the one deadlock's", retries)
	}
	mu.Unlock()
	// The closer waited first, so it was the one aborted; tried again after the replay
	// committed, it ranks bob's replayed score too.
	if got.Outcome != rewards.CloseDone || !got.Paid.Equal(d("140")) {
		t.Errorf("close: %+v, want both ranked and paid", got)
	}
	if err := db.CheckInvariants(ctx, "arcade"); err != nil {
		t.Error(err)
	}
}

// weeklyFrom is decideTournament with the windows made weekly, one starting at from:
// with from = win0, the first weekly window starts where the daily win0 did.
func weeklyFrom(from time.Time) (rewards.Decider, rewards.Tournament) {
	return everyDays(from, 7)
}

// everyOtherDay is decideTournament with windows of 48 hours, one starting at win0.
func everyOtherDay() (rewards.Decider, rewards.Tournament) {
	return everyDays(win0, 2)
}

// everyDays is decideTournament with windows of days days, one starting at from.
func everyDays(from time.Time, days int) (rewards.Decider, rewards.Tournament) {
	t := dailyTournament()
	t.Duration = time.Duration(days) * 24 * time.Hour
	t.Next = func(at time.Time) time.Time {
		n := from
		for n.After(at) {
			n = n.AddDate(0, 0, -days)
		}
		for !n.After(at) {
			n = n.AddDate(0, 0, days)
		}
		return n
	}
	return func(k rewards.Kept) rewards.Decision {
		d := decideTournament(k)
		d.Rules.Tournaments[0] = t
		return d
	}, t
}

// Daily windows made weekly, the week starting where a begun daily window started: that
// daily window keeps its day, and the rest of the week is a window of its own, from the
// day's end to the week's. Before, the week's window shared the day's key, so every
// score made after the day ended was noted "window ended" and counted nowhere, the
// current window stayed the day's, and the week's play was never ranked or paid.
func TestTournamentScheduleChangeToALongerWindowFromTheSameStart(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(win0.Add(time.Hour))
		db := storetest.Open(t, dia, clock.Now)
		recordAndApply(t, db, tscore("ann", "a1", "10", "over", win0.Add(time.Hour))) // the daily win0 begins
		weekly, week := weeklyFrom(win0)
		rest := rewards.Window{Start: win0W.End, End: win0.Add(7 * 24 * time.Hour), ClosesAt: win0.Add(7*24*time.Hour + week.Grace)}
		apply := func(in rewards.Inbound) string {
			t.Helper()
			res, err := db.Record(ctx, []rewards.Inbound{in})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded}, weekly); err != nil {
				t.Fatal(err)
			}
			return reasonOf(t, db, res[0].EventID)
		}
		current := func() rewards.Window {
			t.Helper()
			w, _, ok, err := db.CurrentTournamentWindow(ctx, "arcade", week, clock.Now())
			if err != nil || !ok {
				t.Fatalf("current window: %v %v", ok, err)
			}
			return w
		}
		// In win0's grace: win0 is current, a score made in it still counts there, and
		// one made after its end counts in the rest of the week.
		clock.Set(win0W.End.Add(2 * time.Minute))
		if w := current(); !w.Start.Equal(win0) || !w.End.Equal(win0W.End) {
			t.Errorf("current in win0's grace: %+v, want win0", w)
		}
		if r := apply(tscore("cat", "c1", "30", "over", win0.Add(23*time.Hour))); !strings.Contains(r, "counted in window "+win0.Format(time.RFC3339)) {
			t.Errorf("cat's score made in win0: %q", r)
		}
		if r := apply(tscore("bob", "b1", "99", "over", win0W.End.Add(time.Minute))); !strings.Contains(r, "counted in window "+rest.Start.Format(time.RFC3339)) {
			t.Errorf("bob's score made after win0's end: %q", r)
		}
		clock.Set(win0W.ClosesAt.Add(time.Minute))
		if got, err := db.CloseTournamentWindow(ctx, "arcade", week, week.Recorded(rewards.Window{Start: win0}, mustWindow(t, db, week, win0))); err != nil ||
			got.Outcome != rewards.CloseDone || got.Ranked != 2 {
			t.Fatalf("close win0: %+v %v", got, err)
		}
		// After win0's close: the rest of the week is current and takes scores made in
		// it; a score made in win0 and reported now is late for win0, not counted in it.
		clock.Set(win0.Add(50 * time.Hour))
		if w := current(); !w.Start.Equal(rest.Start) || !w.End.Equal(rest.End) {
			t.Errorf("current after win0's close: %+v, want %+v", w, rest)
		}
		if r := apply(tscore("dan", "d1", "50", "over", win0.Add(50*time.Hour))); !strings.Contains(r, "counted in window "+rest.Start.Format(time.RFC3339)) {
			t.Errorf("dan's score made after win0's close: %q", r)
		}
		if r := apply(tscore("eve", "e1", "500", "over", win0.Add(20*time.Hour))); strings.Contains(r, "counted in window") {
			t.Errorf("eve's score made in win0, reported after its close: %q", r)
		}
		lb, w, ok, err := db.CurrentLeaderboard(ctx, rewards.LeaderboardQuery{Property: "arcade", Tournament: week, Limit: 10}, clock.Now())
		if err != nil || !ok || !w.Start.Equal(rest.Start) || len(lb.Rows) != 2 || lb.Rows[0].User != "bob" || lb.Rows[1].User != "dan" {
			t.Fatalf("current board: %+v %+v %v %v", lb.Rows, w, ok, err)
		}
		// The rest of the week closes at its end + grace and pays its board.
		clock.Set(rest.ClosesAt.Add(time.Minute))
		if got, err := db.CloseTournamentWindow(ctx, "arcade", week, week.Recorded(rewards.Window{Start: rest.Start}, mustWindow(t, db, week, rest.Start))); err != nil ||
			got.Outcome != rewards.CloseDone || got.Ranked != 2 || !got.Paid.Equal(d("140")) {
			t.Fatalf("close the rest of the week: %+v %v", got, err)
		}
		if w := current(); !w.Start.Equal(rest.End) {
			t.Errorf("current after the week: %+v, want the next week", w)
		}
	})
}

func mustWindow(t *testing.T, db *store.DB, tour rewards.Tournament, start time.Time) rewards.WindowRecord {
	t.Helper()
	rec, err := db.TournamentWindow(context.Background(), "arcade", tour.ID, start)
	if err != nil || !rec.Exists {
		t.Fatalf("window %s: %+v %v", start, rec, err)
	}
	return rec
}

// A report late for the window it was made in is not counted there, and its redelivery
// with a new timestamp, in the next window, is not counted there either: it was counted
// in that window and paid its first prize, ahead of the window's real winner (review
// helper 235). The same for a report kept quarantined until its window was over and
// replayed after, with its copy.
func TestTournamentReportLateForItsWindowDoesNotCountInTheNext(t *testing.T) {
	win1 := rewards.Window{Start: win0W.End, End: win0W.End.Add(24 * time.Hour), ClosesAt: win0W.End.Add(24*time.Hour + 15*time.Minute)}
	// Cat's score is window 1's only one: ann's copy is not ranked there.
	catAloneWinsWindow1 := func(t *testing.T, db *store.DB, clock *storetest.Clock) {
		t.Helper()
		ctx := context.Background()
		recordAndApply(t, db, tscore("cat", "c1", "300", "over", win1.Start.Add(2*time.Hour)))
		clock.Set(win1.ClosesAt.Add(time.Minute))
		got, err := db.CloseTournamentWindow(ctx, "arcade", dailyTournament(), win1)
		if err != nil || got.Ranked != 1 || len(got.Awards) != 1 || got.Awards[0].User != "cat" {
			t.Fatalf("window 1: %+v %v, want cat alone, first", got, err)
		}
		if err := db.CheckInvariants(ctx, "arcade"); err != nil {
			t.Fatal(err)
		}
	}
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		t.Run("late", func(t *testing.T) {
			clock := storetest.NewClock(win0.Add(time.Hour))
			db := storetest.Open(t, dia, clock.Now)
			recordAndApply(t, db, tscore("bob", "b1", "100", "over", win0.Add(time.Hour)))
			clock.Set(win0W.ClosesAt.Add(time.Minute)) // ann's report, made a second before the end, comes after the grace
			res := recordAndApply(t, db, tscore("ann", "a1", "500", "over", win0W.End.Add(-time.Second)))
			if r := reasonOf(t, db, res[0].EventID); !strings.Contains(r, "score received late, not counted") {
				t.Fatalf("the late report: %s", r)
			}
			clock.Set(win0W.ClosesAt.Add(2 * time.Minute)) // its redelivery, with a new timestamp: in window 1
			res = recordAndApply(t, db, tscore("ann", "a1", "500", "over", clock.Now()))
			if r := reasonOf(t, db, res[0].EventID); !strings.Contains(r, "this report of play a1 was counted in window "+win0W.Start.Format(time.RFC3339)+", or came late for it") {
				t.Fatalf("the redelivery: %s", r)
			}
			catAloneWinsWindow1(t, db, clock)
		})
		t.Run("replayed", func(t *testing.T) {
			ctx := context.Background()
			clock := storetest.NewClock(win0W.End.Add(-time.Second))
			db := storetest.Open(t, dia, clock.Now)
			recordAndApply(t, db, tscore("bob", "b1", "100", "over", win0.Add(time.Hour)))
			if _, err := db.Record(ctx, []rewards.Inbound{tscore("ann", "a1", "500", "over", win0W.End.Add(-2*time.Second))}); err != nil {
				t.Fatal(err)
			}
			clock.Set(win0W.End.Add(5 * time.Minute)) // its redelivery, in window 0's grace
			if _, err := db.Record(ctx, []rewards.Inbound{tscore("ann", "a1", "500", "over", clock.Now())}); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded}, quarantining("sub token secret rotated wrongly")); err != nil {
				t.Fatal(err)
			}
			clock.Set(win0W.ClosesAt.Add(time.Minute))
			if got, err := db.CloseTournamentWindow(ctx, "arcade", dailyTournament(), win0W); err != nil || got.Quarantined != 2 {
				t.Fatalf("close 0: %+v %v", got, err)
			}
			clock.Set(win0W.ClosesAt.Add(time.Hour)) // the fix, and the replay of both
			for {
				got, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusQuarantined}, decideTournament)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) == 0 {
					break
				}
			}
			catAloneWinsWindow1(t, db, clock)
		})
	})
}

// A report late for the window of an earlier schedule it was made in ("is in window …
// begun under an earlier schedule") is pinned there: its redelivery with a new timestamp
// counted in the new schedule's window and took its first prize (review helper 236).
func TestTournamentReportLateForAnEarlierSchedulesWindowDoesNotCountInTheNew(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock, db := win0Closed(t, dia)
		apply := applying(t, db, dailyAt(18))
		clock.Set(win0W.ClosesAt.Add(5 * time.Minute))
		orig := apply(tscore("bob", "b1", "99", "over", win0W.End.Add(-time.Hour))) // made in win0, received after its grace
		if r := reasonOf(t, db, orig); !strings.Contains(r, "begun under an earlier schedule") {
			t.Fatalf("the original: %s", r)
		}
		clock.Set(win0W.ClosesAt.Add(6 * time.Minute))
		redelivery := apply(tscore("bob", "b1", "99", "over", clock.Now())) // its redelivery, new timestamp
		apply(tscore("cat", "c1", "50", "over", clock.Now()))
		newWin := rewards.Window{Start: win0.Add(6 * time.Hour), End: win0.Add(30 * time.Hour), ClosesAt: win0.Add(30*time.Hour + 15*time.Minute)}
		clock.Set(newWin.ClosesAt.Add(time.Minute))
		got, err := db.CloseTournamentWindow(ctx, "arcade", tournamentAt(18), newWin)
		if err != nil {
			t.Fatal(err)
		}
		if got.Ranked != 1 || len(got.Awards) != 1 || got.Awards[0].User != "cat" {
			t.Fatalf("the new window: ranked %d, awards %+v; want cat alone", got.Ranked, got.Awards)
		}
		if r := reasonOf(t, db, redelivery); !strings.Contains(r, "or came late for it") {
			t.Fatalf("redelivery counted: %s", r)
		}
	})
}

// weekly is decideTournament with weekly windows from Tuesday 2026-12-01 00:00 UTC, and
// its tournament: a schedule whose window starts before win0 (12:00 that day) and ends
// after it.
var weekly, weeklyTournament = weeklyFrom(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))

// After the schedule changes from daily to weekly, the new window starts before the one
// it follows. A report counted in win0, or late for it, is made after win0 began; its
// redelivery with a new timestamp, in the weekly window, is a later copy and does not
// count there. Ordered by their windows' starts, the copy looked first: it counted in
// the weekly window, and a report win0 paid was paid again (review helper 238).
func TestTournamentReportCopyInAnEarlierStartingWindowDoesNotCount(t *testing.T) {
	week := rewards.Window{Start: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC),
		ClosesAt: time.Date(2026, 12, 8, 0, 15, 0, 0, time.UTC)}
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		for _, late := range []bool{false, true} {
			t.Run(map[bool]string{false: "counted", true: "late"}[late], func(t *testing.T) {
				ctx := context.Background()
				clock := storetest.NewClock(win0.Add(time.Hour))
				db := storetest.Open(t, dia, clock.Now)
				recordAndApply(t, db, tscore("ann", "a1", "10", "over", win0.Add(time.Hour))) // win0 begins, daily
				apply := applying(t, db, weekly)
				if late {
					clock.Set(win0W.ClosesAt.Add(time.Minute))
					if got, err := db.CloseTournamentWindow(ctx, "arcade", dailyTournament(), win0W); err != nil || got.Outcome != rewards.CloseDone {
						t.Fatalf("close: %+v %v", got, err)
					}
					clock.Set(win0W.ClosesAt.Add(5 * time.Minute)) // bob's report, made an hour before win0's end
					if r := reasonOf(t, db, apply(tscore("bob", "b1", "99", "over", win0W.End.Add(-time.Hour)))); !strings.Contains(r, "begun under an earlier schedule") {
						t.Fatalf("the late original: %s", r)
					}
				} else {
					clock.Set(win0.Add(23 * time.Hour)) // made in win0, still open: it counts there
					if r := reasonOf(t, db, apply(tscore("bob", "b1", "99", "over", clock.Now()))); !strings.Contains(r, "counted in window "+win0.Format(time.RFC3339)) {
						t.Fatalf("the original: %s", r)
					}
				}
				clock.Set(win0W.ClosesAt.Add(6 * time.Minute)) // the redelivery, in the weekly window
				if r := reasonOf(t, db, apply(tscore("bob", "b1", "99", "over", clock.Now()))); !strings.Contains(r, "this report of play b1 was counted in window "+win0.Format(time.RFC3339)) {
					t.Fatalf("the redelivery: %s", r)
				}
				if !late {
					clock.Set(win0W.ClosesAt.Add(7 * time.Minute))
					if got, err := db.CloseTournamentWindow(ctx, "arcade", dailyTournament(), win0W); err != nil || len(got.Awards) == 0 || got.Awards[0].User != "bob" {
						t.Fatalf("win0: %+v %v, want bob first", got, err)
					}
				}
				clock.Set(week.ClosesAt.Add(time.Minute))
				got, err := db.CloseTournamentWindow(ctx, "arcade", weeklyTournament, week)
				if err != nil || got.Ranked != 0 {
					t.Fatalf("the weekly window: %+v %v, want no one ranked", got, err)
				}
				if err := db.CheckInvariants(ctx, "arcade"); err != nil {
					t.Fatal(err)
				}
			})
		}
	})
}

// Which copy of a report is first goes by when Tally received it, then, within one group
// commit, by when it was made; not by its window's start, nor by the provider's timestamp
// alone (review helper 239):
//   - after a schedule change to overlapping windows (daily at 12:00 to daily at 18:00,
//     weekly to daily), an original applied after its redelivery keeps its own window,
//     received apart or in one group commit; by timestamps against window starts it was
//     refused there, and its window paid someone else first;
//   - a redelivery stamped before its original (a sender's clock behind), received
//     after it, is a later copy: it counted in the earlier window too, on two boards.
func TestTournamentFirstCopyOfAReportIsTheFirstReceived(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		for _, apart := range []bool{true, false} {
			t.Run(map[bool]string{true: "received apart", false: "one group commit"}[apart], func(t *testing.T) {
				ctx := context.Background()
				clock := storetest.NewClock(win0.Add(time.Hour))
				db := storetest.Open(t, dia, clock.Now)
				recordAndApply(t, db, tscore("ann", "a1", "10", "over", win0.Add(time.Hour))) // begins win0, daily at 12:00
				clock.Set(win0W.End.Add(3 * time.Minute))
				original := tscore("bob", "b1", "99", "over", win0W.End.Add(-time.Minute)) // made in win0, received in its grace
				copied := tscore("bob", "b1", "99", "over", win0W.End.Add(2*time.Minute))  // its redelivery: in the 18:00 window
				var ids []int64
				if apart {
					for _, in := range []rewards.Inbound{original, copied} {
						rec, err := db.Record(ctx, []rewards.Inbound{in})
						if err != nil {
							t.Fatal(err)
						}
						ids = append(ids, rec[0].EventID)
						clock.Advance(time.Second)
					}
				} else {
					rec, err := db.Record(ctx, []rewards.Inbound{original, copied})
					if err != nil {
						t.Fatal(err)
					}
					ids = []int64{rec[0].EventID, rec[1].EventID}
				}
				for _, id := range []int64{ids[1], ids[0]} { // the redelivery applied first (another replica, a replay)
					if _, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded, IDs: []int64{id}}, dailyAt(18)); err != nil {
						t.Fatal(err)
					}
				}
				if r := reasonOf(t, db, ids[0]); !strings.Contains(r, "counted in window "+win0.Format(time.RFC3339)) {
					t.Fatalf("the original, made and received in win0: %s", r)
				}
				clock.Set(win0W.ClosesAt.Add(time.Minute))
				got, err := db.CloseTournamentWindow(ctx, "arcade", dailyTournament(), win0W)
				if err != nil || len(got.Awards) == 0 || got.Awards[0].User != "bob" {
					t.Fatalf("win0: %+v %v, want bob first", got, err)
				}
			})
		}
		t.Run("weekly to daily", func(t *testing.T) {
			ctx := context.Background()
			weekStart := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
			weekEnd := weekStart.AddDate(0, 0, 7)
			clock := storetest.NewClock(weekStart.Add(time.Hour))
			db := storetest.Open(t, dia, clock.Now)
			applying(t, db, weekly)(tscore("ann", "a1", "10", "over", weekStart.Add(time.Hour))) // begins the weekly window
			clock.Set(weekEnd.Add(3 * time.Minute))
			rec, err := db.Record(ctx, []rewards.Inbound{tscore("bob", "b1", "99", "over", weekEnd.Add(-time.Minute)),
				tscore("bob", "b1", "99", "over", weekEnd.Add(2*time.Minute))})
			if err != nil {
				t.Fatal(err)
			}
			for _, i := range []int{1, 0} {
				if _, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded, IDs: []int64{rec[i].EventID}}, decideTournament); err != nil {
					t.Fatal(err)
				}
			}
			if r := reasonOf(t, db, rec[0].EventID); !strings.Contains(r, "counted in window "+weekStart.Format(time.RFC3339)) {
				t.Fatalf("the original, made and received in the weekly window: %s", r)
			}
		})
		t.Run("stamped before its original", func(t *testing.T) {
			ctx := context.Background()
			clock := storetest.NewClock(win0W.End.Add(time.Minute))
			db := storetest.Open(t, dia, clock.Now)
			recordAndApply(t, db, tscore("bob", "b1", "99", "over", win0W.End.Add(30*time.Second))) // counted in window 1
			clock.Set(win0W.End.Add(2 * time.Minute))
			recordAndApply(t, db, tscore("bob", "b1", "99", "over", win0W.End.Add(-30*time.Second))) // in win0, still in its grace
			if n, err := store.QueryInt(ctx, db, `SELECT COUNT(*) FROM tournament_scores WHERE user_id = 'bob'`); err != nil || n != 1 {
				t.Fatalf("bob's one report is on %d boards (%v)", n, err)
			}
		})
	})
}

// A pin written before migration 00034, or by an older binary beside this one, has no
// receipt: its window's start stands in, at or before its copy's receipt, so a redelivery
// received after the original, in the next window, is still a later copy. With the pin's
// created_at (when it was written, after its copy's receipt) standing in, the redelivery
// received in between was taken for the first copy, and the report was on two boards
// (review helper 240).
func TestTournamentPinWithoutReceiptKeepsLaterCopiesOut(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(win0W.End.Add(time.Minute))
		db := storetest.Open(t, dia, clock.Now)
		var ids []int64
		for _, in := range []rewards.Inbound{tscore("bob", "b1", "99", "over", win0W.End.Add(-time.Minute)), // made in win0, in its grace
			tscore("bob", "b1", "99", "over", win0W.End.Add(30*time.Second))} { // its redelivery, a second later: in window 1
			rec, err := db.Record(ctx, []rewards.Inbound{in})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, rec[0].EventID)
			clock.Advance(time.Second)
		}
		if _, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded, IDs: ids[:1]}, decideTournament); err != nil {
			t.Fatal(err)
		}
		if err := db.ExecRaw(ctx, `UPDATE tournament_reports SET received_at = NULL, made_at = NULL`); err != nil { // as before 00034
			t.Fatal(err)
		}
		clock.Advance(time.Second)
		if _, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded, IDs: ids[1:]}, decideTournament); err != nil {
			t.Fatal(err)
		}
		if n, err := store.QueryInt(ctx, db, `SELECT COUNT(*) FROM tournament_scores WHERE user_id = 'bob'`); err != nil || n != 1 {
			t.Fatalf("bob's one report is on %d boards (%v)", n, err)
		}
	})
}
