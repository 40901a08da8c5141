package rewards_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"tally/rewards"
)

var tt0 = time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC) // a Monday

// standings builds users u1… with the given scores, each made a second after the last.
func standings(t *testing.T, dir rewards.Direction, scores ...string) []rewards.Standing {
	t.Helper()
	out := make([]rewards.Standing, len(scores))
	for i, s := range scores {
		v := decimal.RequireFromString(s)
		key, err := rewards.ScoreKey(v, dir)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = rewards.Standing{User: fmt.Sprintf("u%d", i+1), Score: v, Key: key, AchievedAt: tt0.Add(time.Duration(i) * time.Second),
			EventID: int64(i + 1), Plays: 1}
	}
	return out
}

func rankLine(rs []rewards.Ranked) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%s:%d", r.User, r.Rank)
	}
	return strings.Join(parts, " ")
}

func TestTournamentRankTable(t *testing.T) {
	cases := []struct {
		name   string
		dir    rewards.Direction
		ties   rewards.Ties
		scores []string
		want   string
	}{
		{"higher, distinct", rewards.Higher, rewards.TiesSplit, []string{"10", "30", "20"}, "u2:1 u3:2 u1:3"},
		{"lower is better", rewards.Lower, rewards.TiesSplit, []string{"10", "30", "20"}, "u1:1 u3:2 u2:3"},
		// 9 ranks above 10 as a number: the key is not the decimal's text.
		{"higher, digits", rewards.Higher, rewards.TiesSplit, []string{"9", "10", "9.5", "0.000000000000000001"}, "u2:1 u3:2 u1:3 u4:4"},
		{"split: tie at the top", rewards.Higher, rewards.TiesSplit, []string{"50", "50", "40"}, "u1:1 u2:1 u3:3"},
		{"split: tie in the middle", rewards.Higher, rewards.TiesSplit, []string{"50", "40", "40", "30"}, "u1:1 u2:2 u3:2 u4:4"},
		{"split: tie at the end", rewards.Higher, rewards.TiesSplit, []string{"50", "40", "40"}, "u1:1 u2:2 u3:2"},
		{"split: everyone tied", rewards.Lower, rewards.TiesSplit, []string{"7", "7.0", "7.000"}, "u1:1 u2:1 u3:1"},
		{"first: the earlier score ranks first", rewards.Higher, rewards.TiesFirst, []string{"50", "50", "40"}, "u1:1 u2:2 u3:3"},
		{"first, lower", rewards.Lower, rewards.TiesFirst, []string{"5", "3", "3"}, "u2:1 u3:2 u1:3"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := rankLine(rewards.Rank(standings(t, c.dir, c.scores...), c.ties, 1))
			if got != c.want {
				t.Fatalf("ranks %s, want %s", got, c.want)
			}
		})
	}
}

func TestTournamentRankMinPlaysAndTieOrder(t *testing.T) {
	s := standings(t, rewards.Higher, "100", "90", "90")
	s[0].Plays = 1 // the best score, but one play short
	s[1].Plays, s[2].Plays = 2, 2
	// Same score made at the same instant: the earlier event ranks first.
	s[2].AchievedAt, s[2].EventID = s[1].AchievedAt, s[1].EventID-1
	if got := rankLine(rewards.Rank(s, rewards.TiesFirst, 2)); got != "u3:1 u2:2" {
		t.Fatalf("min_plays 2: %s, want u3:1 u2:2", got)
	}
	if got := rankLine(rewards.Rank(s, rewards.TiesFirst, 0)); got != "u1:1 u3:2 u2:3" {
		t.Fatalf("min_plays 0: %s", got)
	}
}

// The live leaderboard ranks a page at a time with a Ranker resumed from the cursor; it
// must number exactly as Rank does.
func TestTournamentRankerResumes(t *testing.T) {
	s := standings(t, rewards.Higher, "5", "5", "4", "4", "4", "3")
	all := rewards.Rank(s, rewards.TiesSplit, 1)
	r := rewards.Ranker{Ties: rewards.TiesSplit}
	for i := range 3 {
		r.Next(all[i].Standing)
	}
	resumed := rewards.Ranker{Ties: r.Ties, Position: r.Position, Rank: r.Rank, LastKey: r.LastKey}
	for i := 3; i < len(all); i++ {
		if got := resumed.Next(all[i].Standing); got != all[i].Rank {
			t.Fatalf("row %d: rank %d after resuming, want %d", i, got, all[i].Rank)
		}
	}
}

func prizes() []rewards.Prize {
	return []rewards.Prize{
		{From: 1, To: 1, Amount: decimal.RequireFromString("1000")},
		{From: 2, To: 3, Amount: decimal.RequireFromString("400")},
		{From: 4, To: 10, Amount: decimal.RequireFromString("50")},
	}
}

func awardLine(as []rewards.Award) string {
	parts := make([]string, len(as))
	for i, a := range as {
		parts[i] = fmt.Sprintf("%s@%d=%s", a.User, a.Rank, a.Amount)
	}
	return strings.Join(parts, " ")
}

func TestTournamentPrizeSplitTable(t *testing.T) {
	cases := []struct {
		name   string
		ties   rewards.Ties
		scores []string
		prizes []rewards.Prize
		scale  int32
		want   string
	}{
		{"one each", rewards.TiesSplit, []string{"9", "8", "7", "6"}, prizes(), 0, "u1@1=1000 u2@2=400 u3@3=400 u4@4=50"},
		// Ranks 1 and 2 tied: (1000 + 400) / 2.
		{"tie across the first boundary", rewards.TiesSplit, []string{"9", "9", "7"}, prizes(), 0, "u1@1=700 u2@1=700 u3@3=400"},
		// Ranks 3 and 4 tied across the 400/50 boundary: (400 + 50) / 2.
		{"tie across the second boundary", rewards.TiesSplit, []string{"9", "8", "7", "7", "6"}, prizes(), 0,
			"u1@1=1000 u2@2=400 u3@3=225 u4@3=225 u5@5=50"},
		// Ranks 10 and 11 tied: 50 + 0 shared by two; rank 12 gets nothing.
		{"tie across the last paid rank", rewards.TiesSplit, []string{"20", "19", "18", "17", "16", "15", "14", "13", "12", "11", "11", "10"}, prizes(), 0,
			"u1@1=1000 u2@2=400 u3@3=400 u4@4=50 u5@5=50 u6@6=50 u7@7=50 u8@8=50 u9@9=50 u10@10=25 u11@10=25"},
		// 1000 / 3 does not divide: each gets the share cut at the wallet's scale, and
		// the units left go one each to the tied users in byte order of their ids.
		{"three tied in whole coins", rewards.TiesSplit, []string{"5", "5", "5"},
			[]rewards.Prize{{From: 1, To: 1, Amount: decimal.RequireFromString("1000")}}, 0,
			"u1@1=334 u2@1=333 u3@1=333"},
		{"two units left among three", rewards.TiesSplit, []string{"5", "5", "5"},
			[]rewards.Prize{{From: 1, To: 1, Amount: decimal.RequireFromString("1001")}}, 0,
			"u1@1=334 u2@1=334 u3@1=333"},
		{"three tied in cents", rewards.TiesSplit, []string{"5", "5", "5"},
			[]rewards.Prize{{From: 1, To: 1, Amount: decimal.RequireFromString("1000")}}, 2,
			"u1@1=333.34 u2@1=333.33 u3@1=333.33"},
		{"three tied at 18 places", rewards.TiesSplit, []string{"5", "5", "5"},
			[]rewards.Prize{{From: 1, To: 1, Amount: decimal.RequireFromString("1000")}}, 18,
			"u1@1=333.333333333333333334 u2@1=333.333333333333333333 u3@1=333.333333333333333333"},
		// Fewer units than tied users: those after the units get nothing and are left out.
		{"fewer units than users", rewards.TiesSplit, []string{"5", "5", "5"},
			[]rewards.Prize{{From: 1, To: 1, Amount: decimal.RequireFromString("2")}}, 0,
			"u1@1=1 u2@1=1"},
		{"first: no sharing", rewards.TiesFirst, []string{"9", "9", "7"}, prizes(), 0, "u1@1=1000 u2@2=400 u3@3=400"},
		{"more prizes than players", rewards.TiesSplit, []string{"3", "1"}, prizes(), 0, "u1@1=1000 u2@2=400"},
		{"no players", rewards.TiesSplit, nil, prizes(), 0, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ranked := rewards.Rank(standings(t, rewards.Higher, c.scores...), c.ties, 1)
			got := rewards.Awards(ranked, c.prizes, c.scale)
			if line := awardLine(got); line != c.want {
				t.Fatalf("awards\n got %s\nwant %s", line, c.want)
			}
			// The parts add up exactly to the prizes of the ranks occupied.
			paid, due := decimal.Zero, decimal.Zero
			for _, a := range got {
				paid = paid.Add(a.Amount)
			}
			for i := range ranked {
				due = due.Add(rewards.PrizeOf(c.prizes, int64(i+1)))
			}
			if !paid.Equal(due) {
				t.Fatalf("paid %s, the occupied ranks' prizes are %s", paid, due)
			}
		})
	}
}

// The remainder goes by byte order of user id, not by who ranks first among the tied.
func TestTournamentSplitRemainderByUserID(t *testing.T) {
	s := standings(t, rewards.Higher, "5", "5", "5")
	s[0].User, s[1].User, s[2].User = "zed", "Ann", "bob" // "A" < "b" < "z" in bytes
	got := rewards.Awards(rewards.Rank(s, rewards.TiesSplit, 1), []rewards.Prize{{From: 1, To: 3, Amount: decimal.RequireFromString("1")}}, 0)
	// 3 coins shared by 3: one each, no remainder.
	if line := awardLine(got); line != "Ann@1=1 bob@1=1 zed@1=1" {
		t.Fatalf("awards %s", line)
	}
	got = rewards.Awards(rewards.Rank(s, rewards.TiesSplit, 1), []rewards.Prize{{From: 1, To: 1, Amount: decimal.RequireFromString("2")}}, 0)
	if line := awardLine(got); line != "Ann@1=1 bob@1=1" {
		t.Fatalf("awards %s: 2 coins among 3 are one each to Ann and bob", line)
	}
}

func weekly() rewards.Tournament {
	return rewards.Tournament{ID: "snake-weekly", Game: "NyM_JGWcx", Direction: rewards.Higher, Duration: 24 * time.Hour, Grace: 15 * time.Minute,
		Ties: rewards.TiesSplit, MinPlays: 1,
		// A day-long window starting 12:00 UTC each day: every window crosses midnight.
		Next: func(t time.Time) time.Time {
			d := time.Date(t.Year(), t.Month(), t.Day(), 12, 0, 0, 0, time.UTC)
			if !d.After(t) {
				d = d.AddDate(0, 0, 1)
			}
			return d
		}}
}

func TestTournamentWindowOverDayBoundaryAndGrace(t *testing.T) {
	tour := weekly()
	r := rewards.Rules{Tournaments: []rewards.Tournament{tour}}
	score := func(made, received time.Time, state string) rewards.TournamentScore {
		t.Helper()
		ev := rewards.Event{Source: rewards.SourceGamezopScores, Kind: rewards.KindScore, DedupeKey: "k", User: "u",
			OccurredAt: &made, Score: &rewards.Score{Game: "NyM_JGWcx", Value: decimal.NewFromInt(10), State: state, PlayID: "p"}}
		got := rewards.TournamentScores(ev, r, received, nil)
		if len(got) != 1 {
			t.Fatalf("%d tournament scores, want 1", len(got))
		}
		return got[0]
	}
	start := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	// Made after midnight, inside the window that started the day before.
	s := score(time.Date(2026, 12, 2, 0, 30, 0, 0, time.UTC), time.Date(2026, 12, 2, 0, 30, 1, 0, time.UTC), "over")
	if !s.Counts || !s.Window.Start.Equal(start) || !s.Window.End.Equal(start.Add(24*time.Hour)) {
		t.Fatalf("score after midnight: %+v, want the window from %s", s, start)
	}
	end := start.Add(24 * time.Hour)
	// The last instant of the window belongs to it; the end belongs to the next.
	if s := score(end.Add(-time.Microsecond), end.Add(-time.Microsecond), "over"); !s.Counts || !s.Window.Start.Equal(start) {
		t.Fatalf("last instant: %+v", s)
	}
	if s := score(end, end, "over"); !s.Counts || !s.Window.Start.Equal(end) {
		t.Fatalf("at the end: %+v, want the next window", s)
	}
	// Made before the end, received in the grace period: counts; at end + grace: late.
	if s := score(end.Add(-time.Second), end.Add(15*time.Minute-time.Microsecond), "over"); !s.Counts {
		t.Fatalf("inside grace: %+v", s)
	}
	if s := score(end.Add(-time.Second), end.Add(15*time.Minute), "over"); s.Counts || !strings.Contains(s.Note, "late") {
		t.Fatalf("at end + grace: %+v, want not counted as late", s)
	}
	// A provider timestamp after receipt cannot move a score forward.
	if s := score(end.Add(time.Hour), end.Add(-time.Second), "over"); !s.Counts || !s.Window.Start.Equal(start) {
		t.Fatalf("future timestamp: %+v, want the window of receipt", s)
	}
	// loaded and start never count, even when the config lists them.
	r.Tournaments[0].States = []string{"loaded", "start", "over"}
	for _, st := range []string{"loaded", "start"} {
		if s := score(end.Add(-time.Hour), end.Add(-time.Hour), st); s.Counts {
			t.Fatalf("state %s counted", st)
		}
	}
	r.Tournaments[0].States = nil
	// A provider's test request (GamePush player.test) enters no tournament.
	made := end.Add(-time.Hour)
	test := rewards.Event{Source: rewards.SourceGamezopScores, Kind: rewards.KindScore, DedupeKey: "k", User: "u", Test: true,
		OccurredAt: &made, Score: &rewards.Score{Game: "NyM_JGWcx", Value: decimal.NewFromInt(10), State: "over", PlayID: "p"}}
	if got := rewards.TournamentScores(test, r, made, nil); len(got) != 0 {
		t.Fatalf("a test score: %+v, want none", got)
	}
	if w, ok := tour.Current(end.Add(10 * time.Minute)); !ok || !w.Start.Equal(start) {
		t.Fatalf("current during grace: %+v, want the window still closing", w)
	}
	if w, ok := tour.Current(end.Add(15 * time.Minute)); !ok || !w.Start.Equal(end) {
		t.Fatalf("current after grace: %+v, want the next window", w)
	}
	if _, ok := tour.WindowStarting(start.Add(time.Hour)); ok {
		t.Fatal("13:00 taken for a window start")
	}
}

// A window that has begun ends as it was begun: with a record of a 24-hour window and a
// duration of 6 hours today, a score made 10 hours in belongs to the recorded window, is
// late only after the recorded end + grace, and Recorded shows the recorded end (and,
// once closed, the recorded closes_at).
func TestTournamentBegunWindowKeepsItsEnd(t *testing.T) {
	tour := weekly()
	tour.Duration = 6 * time.Hour
	r := rewards.Rules{Tournaments: []rewards.Tournament{tour}}
	start := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	rec := rewards.WindowRecord{Tournament: tour.ID, Start: start, End: start.Add(24 * time.Hour), Exists: true}
	score := func(made, received time.Time, begun []rewards.WindowRecord) rewards.TournamentScore {
		t.Helper()
		ev := rewards.Event{Source: rewards.SourceTrackScore, Kind: rewards.KindScore, DedupeKey: "k", User: "u",
			OccurredAt: &made, Score: &rewards.Score{Game: "NyM_JGWcx", Value: decimal.NewFromInt(10)}}
		got := rewards.TournamentScores(ev, r, received, begun)
		if len(got) != 1 {
			t.Fatalf("%d tournament scores, want 1", len(got))
		}
		return got[0]
	}
	at := start.Add(10 * time.Hour)
	if s := score(at, at, nil); s.Counts {
		t.Fatalf("without the record, 10 hours into a 6-hour window: %+v", s)
	}
	s := score(at, at, []rewards.WindowRecord{rec})
	if !s.Counts || !s.Window.Start.Equal(start) || !s.Window.End.Equal(rec.End) || !s.Window.ClosesAt.Equal(rec.End.Add(15*time.Minute)) {
		t.Fatalf("with the record: %+v", s)
	}
	if s := score(rec.End.Add(-time.Second), rec.End.Add(15*time.Minute), []rewards.WindowRecord{rec}); s.Counts || !strings.Contains(s.Note, "late") {
		t.Fatalf("received at the recorded end + grace: %+v", s)
	}
	other := rec
	other.Tournament = "another"
	if s := score(at, at, []rewards.WindowRecord{other}); s.Counts {
		t.Fatalf("another tournament's record taken: %+v", s)
	}
	if w := tour.Recorded(rewards.Window{Start: start}, rec); !w.End.Equal(rec.End) || !w.ClosesAt.Equal(rec.End.Add(15*time.Minute)) {
		t.Fatalf("recorded open window %+v", w)
	}
	closed := rec
	closed.ClosedAt, closed.ClosesAt = rec.End.Add(time.Hour), rec.End.Add(5*time.Minute)
	if w := tour.Recorded(rewards.Window{Start: start}, closed); !w.ClosesAt.Equal(closed.ClosesAt) {
		t.Fatalf("recorded closed window %+v", w)
	}

	// A tournament of one window takes an end moved later while its window is open (an
	// extension), not one moved earlier, and not once it has closed.
	cup := weekly()
	cup.Next, cup.Duration, cup.Start, cup.End = nil, 0, start, start.Add(72*time.Hour)
	if w := cup.Recorded(rewards.Window{Start: start}, rec); !w.End.Equal(cup.End) || !w.ClosesAt.Equal(cup.End.Add(15*time.Minute)) {
		t.Fatalf("one window extended: %+v", w)
	}
	cup.End = start.Add(12 * time.Hour)
	if w := cup.Recorded(rewards.Window{Start: start}, rec); !w.End.Equal(rec.End) {
		t.Fatalf("one window shortened: %+v, want the recorded end", w)
	}
	cup.End = start.Add(72 * time.Hour)
	if w := cup.Recorded(rewards.Window{Start: start}, closed); !w.End.Equal(rec.End) || !w.ClosesAt.Equal(closed.ClosesAt) {
		t.Fatalf("one window extended after its close: %+v", w)
	}
}

func TestTournamentPrizeEntryCredits(t *testing.T) {
	tour := weekly()
	tour.Hold = time.Hour
	w, _ := tour.WindowAt(tt0.Add(13 * time.Hour))
	e := tour.PrizeEntry(w, rewards.Award{User: "u", Rank: 1, Amount: decimal.RequireFromString("12.5")}, tt0)
	after, err := rewards.NewWallet().Post(e)
	if err != nil {
		t.Fatal(err)
	}
	if !after.Pending.Equal(decimal.RequireFromString("12.5")) || !after.LifetimeEarned.Equal(after.Pending) || !e.Lot().Equal(after.Pending) {
		t.Fatalf("wallet after a prize: %+v; a prize is a credit that settles like any other", after)
	}
	if !e.MaturesAt.Equal(tt0.Add(time.Hour)) {
		t.Fatalf("matures %s, want close + hold", e.MaturesAt)
	}
}

// Buckets are contiguous in key order and named by their lowest key, whatever the
// direction, and each fine bucket lies in one coarse bucket: the rank count relies on it.
func TestTournamentRankBuckets(t *testing.T) {
	values := []string{"0", "0.000000000000000001", "0.5", "1", "9", "10", "99.9", "100", "100.5", "101", "199", "200", "999", "1000",
		"1234.5678", "99999999999999999999.999999999999999999"}
	for _, dir := range []rewards.Direction{rewards.Higher, rewards.Lower} {
		var keys []string
		for _, v := range values {
			k, err := rewards.ScoreKey(decimal.RequireFromString(v), dir)
			if err != nil {
				t.Fatal(err)
			}
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, digits := range []int{rewards.CoarseDigits, rewards.FineDigits} {
			for i, k := range keys {
				b := rewards.RankBucket(k, dir, digits)
				if b > k || rewards.RankBucket(b, dir, digits) != b {
					t.Fatalf("%s/%d: bucket %s of %s is not its lowest key", dir, digits, b, k)
				}
				if i > 0 && rewards.RankBucket(keys[i-1], dir, digits) > b {
					t.Fatalf("%s/%d: buckets out of key order at %s", dir, digits, k)
				}
			}
		}
		for _, k := range keys {
			fine := rewards.RankBucket(k, dir, rewards.FineDigits)
			if rewards.RankBucket(fine, dir, rewards.CoarseDigits) != rewards.RankBucket(k, dir, rewards.CoarseDigits) {
				t.Fatalf("%s: the fine bucket of %s is not inside its coarse bucket", dir, k)
			}
		}
		bucket := func(v string, digits int) string {
			k, _ := rewards.ScoreKey(decimal.RequireFromString(v), dir)
			return rewards.RankBucket(k, dir, digits)
		}
		// 100 and 100.5 share a fine bucket (first three digits 100); 101 does not, but
		// shares the coarse one (first digit 1) with them and 199; 200 does not.
		if bucket("100", 3) != bucket("100.5", 3) || bucket("100", 3) == bucket("101", 3) ||
			bucket("101", 1) != bucket("199", 1) || bucket("100", 1) != bucket("101", 1) || bucket("199", 1) == bucket("200", 1) {
			t.Fatalf("%s: buckets of 100, 100.5, 101, 199, 200", dir)
		}
	}
}
