package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"gorm.io/gorm"

	"tally/rewards"
)

// Tournaments (issue 12; the rules are rewards/tournament.go). The applier keeps each
// window's live leaderboard in the transaction that applies the scores: one row per
// (tournament, window, user) with the best score and the number of distinct plays. The
// closer ranks a window once its grace is over and pays its prizes through the wallet,
// in one transaction that also marks the window closed and stores its final ranking
// (migrations/*/00009). The window's row orders the two (migrations/*/00008): score
// writers hold it share-locked, the closer locks it for update, so whatever the
// replicas, a score is either in the ranking that was paid or is recorded as too late,
// and a window pays once. The publisher's reads of the boards are tournament_reads.go.

// windowKey names one window of one tournament of one property.
type windowKey struct {
	property, tournament string
	start                int64 // unix microseconds: time.Time values that are Equal may differ as map keys
}

func windowOf(property, tournament string, start time.Time) windowKey {
	return windowKey{property, tournament, start.UTC().UnixMicro()}
}

// counted is one score that counts for one window, keyed with dir: the direction of its
// tournament, then the one its window was begun with (lockWindows).
type counted struct {
	it        *applyItem
	s         rewards.TournamentScore
	dir       rewards.Direction
	game      string
	oneWindow bool // a tournament of one window (start, end), whose end may be moved later
	refused   bool // not ranked: only its report is pinned (refusedReport)
}

// refusedReport is a score refused in the window it was made in because that window is
// over (received late, closed, or replayed after its grace): it is not ranked, and its
// report is pinned to that window all the same (pinReports), so that its redelivery with
// a new timestamp does not count in the next one (review helper 235).
func refusedReport(it *applyItem, s rewards.TournamentScore) counted {
	return counted{it: it, s: s, refused: true}
}

// applyTournaments adds the batch's applied score events to the leaderboards of their
// properties' tournaments, and says on each event why a tournament did not count it.
// It runs in Apply's transaction, after the wallets are locked: the window rows are
// locked last, so it never waits for a wallet while holding a window (the closer, which
// locks a window and then wallets, first waits until no score received before the
// window's close is still recorded; see closeWindow). A replay's scores are quarantined,
// not recorded, so a replay and a close can wait for each other: Postgres aborts the one
// that waited first and the store tries it again (TestReplayAndWindowCloseMeetingInA
// DeadlockBothComplete). Taking windows before wallets in replays was tried: it made
// other cycles (with a one-window tournament's extension, and between replicas on two
// configs during a deploy), more likely than this one, which costs a second and a retry.
func (db *DB) applyTournaments(tx *gorm.DB, items []*applyItem, now time.Time) error {
	var scores, refused []counted
	var (
		begun   map[string][]rewards.WindowRecord
		created map[windowKey]time.Time // when each open window began (its row was written)
	)
	type waitKey struct {
		property, game  string
		start, closesAt int64
	}
	waits := map[waitKey]bool{}                  // eventsWaiting, asked once per property, game and close
	overlaps := map[windowKey][]recordedWindow{} // overlappingWindows, once per window
	rests := map[restKey][]recordedWindow{}      // restOf's windows, once per schedule window
	for _, it := range items {
		if it.status != rewards.StatusApplied || it.rules == nil || len(it.rules.Tournaments) == 0 ||
			it.event.Kind != rewards.KindScore || it.event.Score == nil {
			continue
		}
		if begun == nil {
			var err error
			if begun, created, err = openWindows(tx, items); err != nil {
				return err
			}
		}
		for _, s := range rewards.TournamentScores(it.event, *it.rules, it.receivedAt, begun[it.property]) {
			if !s.Counts {
				it.note(s.Note)
				if s.Late {
					refused = append(refused, refusedReport(it, s))
				}
				continue
			}
			t, known := tournamentOf(*it.rules, s.Tournament) // always: TournamentScores read it from these rules
			if known && t.Next != nil && !begunWhole(begun[it.property], s) {
				var err error
				if s.Window, err = restOf(tx, rests, it.property, t, s.Window, s.At); err != nil {
					return err
				}
			}
			// A window in which no score counted by end + grace (+ the closer's margin),
			// and for which no event received before then waits for the applier, ended
			// with nothing to rank or pay (the publisher API says "ended"); the closer
			// never looks at it again. A replayed score, received in time but quarantined
			// then, must not open it now: its row would be closed and paid, to whoever
			// was replayed, long after. While such an event waits, the window is still
			// closing and the replay counts like it.
			wk := windowOf(it.property, s.Tournament, s.Window.Start)
			since, open := created[wk] // the window has an open row, begun then
			if it.replay && !open && !now.Before(s.Window.ClosesAt.Add(rewards.TournamentCloseMargin)) {
				key := waitKey{it.property, it.event.Score.Game, s.Window.Start.UnixMicro(), s.Window.ClosesAt.UnixMicro()}
				w, ok := waits[key]
				if !ok {
					var err error
					if w, err = eventsWaiting(tx, it.property, it.event.Score.Game, s.Window); err != nil {
						return err
					}
					waits[key] = w
				}
				if !w {
					it.note(fmt.Sprintf("tournament %s: window %s is over (its grace ended at %s); a replayed score does not count in it",
						s.Tournament, s.Window.Start.Format(time.RFC3339), s.Window.ClosesAt.Format(time.RFC3339)))
					refused = append(refused, refusedReport(it, s))
					continue
				}
			}
			// After a schedule change a window may overlap a recorded window of the
			// tournament that began before it, under the old schedule. A score made
			// inside that one belongs to it, not to this one: it counts there while that
			// window is open (windowFor takes the open window that began first), else it
			// was ranked there or is late for it.
			rs, ok := overlaps[wk]
			if !ok {
				var err error
				if rs, err = overlappingWindows(tx, it.property, s.Tournament, s.Window); err != nil {
					return err
				}
				overlaps[wk] = rs
			}
			if r, in := madeIn(rs, s.At, s.Window.Start, since, open); in {
				it.note(fmt.Sprintf("tournament %s: score made at %s is in window %s (begun under an earlier schedule, ending at %s); not counted",
					s.Tournament, s.At.Format(time.RFC3339), r.start.Format(time.RFC3339), r.end.Format(time.RFC3339)))
				// Ranked there or late for it: its report belongs there, not to this
				// window, where its redelivery counted (review helper 236).
				old := s
				old.Window.Start, old.Window.End = r.start, r.end
				refused = append(refused, refusedReport(it, old))
				continue
			}
			c := counted{it: it, s: s, dir: t.Direction, game: t.Game, oneWindow: known && t.Next == nil}
			// A tournament of one window has one: once it has begun, a start moved so
			// that the configured window overlaps it does not begin a second one
			// beside it, which the closer would rank and pay in full again. (A
			// schedule's windows follow each other; an overlap there is a new window.)
			if r, ok := begunFirst(rs, s.Window.Start, since, open); c.oneWindow && ok {
				it.note(fmt.Sprintf("tournament %s: its one window began at %s (ending at %s) before its start moved to %s; score made at %s not counted",
					s.Tournament, r.start.Format(time.RFC3339), r.end.Format(time.RFC3339), s.Window.Start.Format(time.RFC3339),
					s.At.Format(time.RFC3339)))
				continue
			}
			scores = append(scores, c)
		}
	}
	if len(scores) == 0 {
		_, err := pinReports(tx, nil, refused, now)
		return err
	}
	if err := extendWindows(tx, scores); err != nil {
		return err
	}
	rows, err := db.lockWindows(tx, scores, now)
	if err != nil {
		return err
	}
	live := scores[:0:0]
	for _, c := range scores {
		row := rows[windowOf(c.it.property, c.s.Tournament, c.s.Window.Start)]
		if row.dir != "" && row.dir != c.dir {
			// The direction changed since the window began: its scores stay keyed as
			// they were, so one ranking never mixes both orders.
			key, err := rewards.ScoreKey(c.s.Value, row.dir)
			if err != nil {
				return err // the same score was keyed the other way: cannot fail
			}
			c.s.Key, c.dir = key, row.dir
		}
		start := c.s.Window.Start.Format(time.RFC3339)
		// A window ends when it was begun to end: if the duration changed since, its
		// row, not the schedule, says when scores stop counting.
		closesAt := row.end.Add(c.s.Window.ClosesAt.Sub(c.s.Window.End))
		switch {
		case row.game != "" && row.game != c.game:
			// The game changed since the window began: scores of two games are in
			// unrelated units, so one board never ranks both. The new game counts from
			// the next window on; a tournament of one window has none.
			then := "it counts from the next window"
			if c.oneWindow {
				then = "a tournament of one window ranks no other game"
			}
			c.it.note(fmt.Sprintf("tournament %s: window %s ranks game %s, its game when it began; score on %s not counted (%s)",
				c.s.Tournament, start, row.game, c.game, then))
		case row.closed:
			c.it.note(fmt.Sprintf("tournament %s: window %s is closed; score not counted", c.s.Tournament, start))
			refused = append(refused, refusedReport(c.it, c.s))
		case !c.s.At.Before(row.end):
			c.it.note(fmt.Sprintf("tournament %s: window %s ended at %s; score made at %s not counted", c.s.Tournament, start,
				row.end.Format(time.RFC3339), c.s.At.Format(time.RFC3339)))
		case !c.it.receivedAt.Before(closesAt):
			c.it.note(fmt.Sprintf("tournament %s: window %s closed at %s; score received late, not counted", c.s.Tournament, start,
				closesAt.Format(time.RFC3339)))
			refused = append(refused, refusedReport(c.it, c.s))
		default:
			live = append(live, c)
		}
	}
	if live, err = pinReports(tx, live, refused, now); err != nil || len(live) == 0 {
		return err
	}
	fresh, err := insertPlays(tx, live)
	if err != nil {
		return err
	}
	if err := db.upsertScores(tx, live, fresh, now); err != nil {
		return err
	}
	for _, c := range live {
		c.it.note(fmt.Sprintf("tournament %s: counted in window %s", c.s.Tournament, c.s.Window.Start.Format(time.RFC3339)))
	}
	return nil
}

// extendWindows moves the end of the open windows of one-window tournaments among scores
// to the end their config gives, where that is later (an extension: Recorded): their
// rows end then from now on. It runs before lockWindows share-locks the rows: an update
// there would upgrade a share lock, and two batches doing it at once deadlocked. Here the
// first batch updates and the others, waiting for its row lock, find the row extended
// and update nothing; a window not extended matches no row and waits for nothing.
func extendWindows(tx *gorm.DB, scores []counted) error {
	type ext struct {
		k windowKey
		c counted
	}
	var exts []ext
	seen := map[windowKey]bool{}
	for _, c := range scores {
		k := windowOf(c.it.property, c.s.Tournament, c.s.Window.Start)
		if c.oneWindow && !seen[k] {
			seen[k] = true
			exts = append(exts, ext{k, c})
		}
	}
	slices.SortFunc(exts, func(a, b ext) int { // one order for every batch
		return cmp.Or(cmp.Compare(a.k.property, b.k.property), cmp.Compare(a.k.tournament, b.k.tournament), cmp.Compare(a.k.start, b.k.start))
	})
	for _, e := range exts {
		end := e.c.s.Window.End.UTC()
		if _, err := rawExec(tx, `UPDATE tournament_windows SET window_end = ? WHERE property = ? AND tournament = ? AND window_start = ?
			AND window_end < ? AND closed_at IS NULL`, end, e.c.it.property, e.c.s.Tournament, e.c.s.Window.Start.UTC(), end); err != nil {
			return err
		}
	}
	return nil
}

// restKey is a schedule window of a tournament, as restOf reads it.
type restKey struct {
	windowKey
	end int64
}

// restOf is the window a score made at at counts in when its schedule window w starts
// where windows of an earlier, shorter schedule or duration began (daily made weekly, the
// week starting where a begun day did). Those windows keep the ends they began with, and
// a window's row is keyed by its start, so what is left of w after them is a window of
// its own, from the last one's end to w's end. A score made in one of them gets that one
// (counted while it is open, else it is closed or late); any other gets w's rest. Without
// such windows it is w. rows caches the windows read, per schedule window.
func restOf(tx *gorm.DB, rows map[restKey][]recordedWindow, property string, t rewards.Tournament, w rewards.Window,
	at time.Time) (rewards.Window, error) {
	k := restKey{windowOf(property, t.ID, w.Start), w.End.UnixMicro()}
	rs, ok := rows[k]
	if !ok {
		q, err := rawQuery(tx, `SELECT window_start, window_end FROM tournament_windows
			WHERE property = ? AND tournament = ? AND window_start >= ? AND window_start < ?`, property, t.ID, w.Start.UTC(), w.End.UTC())
		if err != nil {
			return w, err
		}
		defer q.Close()
		for q.Next() {
			var r recordedWindow
			if err := q.Scan(&r.start, &r.end); err != nil {
				return w, err
			}
			r.start, r.end = r.start.UTC(), r.end.UTC()
			rs = append(rs, r)
		}
		if err := q.Err(); err != nil {
			return w, err
		}
		rows[k] = rs
	}
	start := w.Start
	for {
		i := slices.IndexFunc(rs, func(r recordedWindow) bool { return r.start.Equal(start) })
		if i < 0 || !rs[i].end.Before(w.End) || !rs[i].end.After(start) {
			break // w itself (recorded with its own end or not begun), or its rest
		}
		if r := rs[i]; at.Before(r.end) {
			return t.Recorded(rewards.Window{Start: r.start}, rewards.WindowRecord{Exists: true, Start: r.start, End: r.end}), nil
		}
		start = rs[i].end
	}
	if start.Equal(w.Start) {
		return w, nil
	}
	return rewards.Window{Start: start, End: w.End, ClosesAt: w.ClosesAt}, nil
}

// begunWhole reports whether s's window has begun with the end s gives it, as it has
// while a schedule is unchanged: then it is no other window's rest (restOf).
func begunWhole(begun []rewards.WindowRecord, s rewards.TournamentScore) bool {
	return slices.ContainsFunc(begun, func(r rewards.WindowRecord) bool {
		return r.Tournament == s.Tournament && r.Start.Equal(s.Window.Start) && !r.End.Before(s.Window.End)
	})
}

// tournamentOf is the tournament id of r.
func tournamentOf(r rewards.Rules, id string) (rewards.Tournament, bool) {
	for _, t := range r.Tournaments {
		if t.ID == id {
			return t, true
		}
	}
	return rewards.Tournament{}, false
}

// recordedWindow is a window's row as the overlap check reads it.
type recordedWindow struct {
	start, end, created time.Time
	oneWindow           bool // begun as its tournament's one window (migration 00020)
}

// overlappingWindows reads the recorded windows of property's tournament, open or
// closed, that overlap w and start elsewhere: windows of another schedule (one
// schedule's windows never overlap). Usually none; the read walks the tournament's
// windows that start before w ends.
func overlappingWindows(tx *gorm.DB, property, tournament string, w rewards.Window) ([]recordedWindow, error) {
	rs, err := rawQuery(tx, `SELECT window_start, window_end, created_at, one_window FROM tournament_windows
		WHERE property = ? AND tournament = ? AND window_start < ? AND window_end > ? AND window_start <> ?`,
		property, tournament, w.End.UTC(), w.Start.UTC(), w.Start.UTC())
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []recordedWindow
	for rs.Next() {
		var r recordedWindow
		if err := rs.Scan(&r.start, &r.end, &r.created, &r.oneWindow); err != nil {
			return nil, err
		}
		r.start, r.end, r.created = r.start.UTC(), r.end.UTC(), r.created.UTC()
		out = append(out, r)
	}
	return out, rs.Err()
}

// madeIn returns the window of rs a score made at at was made in, if that window began
// before the score's own window, which starts at start (since, when open says that one
// has an open row; without one it has not begun, and every recorded window began before
// it).
func madeIn(rs []recordedWindow, at, start, since time.Time, open bool) (recordedWindow, bool) {
	for _, r := range rs {
		if !at.Before(r.start) && at.Before(r.end) && (!open || r.begunBefore(start, since)) {
			return r, true
		}
	}
	return recordedWindow{}, false
}

// begunFirst returns a window of rs begun as its tournament's one window before the
// window starting at start (see madeIn for since and open), wherever a score was made. A
// window begun under a schedule is not one: a cup replacing the schedule begins its own.
func begunFirst(rs []recordedWindow, start, since time.Time, open bool) (recordedWindow, bool) {
	for _, r := range rs {
		if r.oneWindow && (!open || r.begunBefore(start, since)) {
			return r, true
		}
	}
	return recordedWindow{}, false
}

// begunBefore reports whether r began before the open window starting at start, begun
// at since. Windows begun at the same instant are ordered by start, as openWindows orders them.
func (r recordedWindow) begunBefore(start, since time.Time) bool {
	return r.created.Before(since) || (r.created.Equal(since) && r.start.Before(start))
}

// openWindows reads, by property, the windows of the items' properties that have begun
// and not closed (rewards.TournamentScores: a begun window ends as it was begun). Their
// ends never change; one closed since is found closed under its lock (lockWindows).
func openWindows(tx *gorm.DB, items []*applyItem) (map[string][]rewards.WindowRecord, map[windowKey]time.Time, error) {
	seen := map[string]bool{}
	var props []any
	for _, it := range items {
		if it.rules != nil && len(it.rules.Tournaments) > 0 && !seen[it.property] {
			seen[it.property] = true
			props = append(props, it.property)
		}
	}
	out := map[string][]rewards.WindowRecord{}
	created := map[windowKey]time.Time{}
	// In the order they began: when an old schedule's window and a new one's are both
	// open, a score made in both belongs to the one that began first (it runs to its
	// end). Open windows of one schedule never overlap.
	rs, err := rawQuery(tx, `SELECT property, tournament, window_start, window_end, created_at FROM tournament_windows
		WHERE closed_at IS NULL AND property IN (`+strings.TrimSuffix(strings.Repeat("?, ", len(props)), ", ")+`)
		ORDER BY property, tournament, created_at, window_start`, props...)
	if err != nil {
		return nil, nil, err
	}
	defer rs.Close()
	for rs.Next() {
		r := rewards.WindowRecord{Exists: true, Paid: decimal.Zero}
		var at time.Time
		if err := rs.Scan(&r.Property, &r.Tournament, &r.Start, &r.End, &at); err != nil {
			return nil, nil, err
		}
		r.Start, r.End = r.Start.UTC(), r.End.UTC()
		out[r.Property] = append(out[r.Property], r)
		created[windowOf(r.Property, r.Tournament, r.Start)] = at.UTC()
	}
	return out, created, rs.Err()
}

// note adds a remark to the reason an applied event carries.
func (it *applyItem) note(s string) {
	if it.reason == "" {
		it.reason = s
		return
	}
	it.reason += "; " + s
}

// windowRow is what a score writer needs of its window's row.
type windowRow struct {
	end    time.Time
	closed bool
	dir    rewards.Direction // as begun; "" for windows begun before it was kept
	game   string            // as begun; "" for windows begun before it was kept (00031)
}

// lockWindows creates the windows' rows that do not exist yet and reads them all under a
// share lock, held until commit. Score writers share it, so batches of one window apply
// side by side; the closer's FOR UPDATE waits for every writer that holds it and holds
// off the writers that come after, so a score is either in the ranking that was paid or
// sees the window closed. (Only the first batches of a new window wait for each other:
// an insert waits for an uncommitted insert of the same key.) SQLite has one writer at a
// time, and no row locks to take.
func (db *DB) lockWindows(tx *gorm.DB, scores []counted, now time.Time) (map[windowKey]windowRow, error) {
	seen := map[windowKey]bool{}
	var rows [][]any
	for _, c := range scores {
		k := windowOf(c.it.property, c.s.Tournament, c.s.Window.Start)
		if !seen[k] {
			seen[k] = true
			rows = append(rows, []any{k.property, k.tournament, c.s.Window.Start.UTC(), c.s.Window.End.UTC(), now, string(c.dir), c.oneWindow, c.game})
		}
	}
	slices.SortFunc(rows, func(a, b []any) int { return compareKeys(a, b, 3) })
	if err := insertRows(tx, `INSERT INTO tournament_windows (property, tournament, window_start, window_end, created_at, direction, one_window, game) VALUES `, rows,
		` ON CONFLICT (property, tournament, window_start) DO NOTHING`); err != nil {
		return nil, err
	}
	out := make(map[windowKey]windowRow, len(rows))
	for i := 0; i < len(rows); i += 100 {
		part := rows[i:min(i+100, len(rows))]
		where := make([]string, len(part))
		var args []any
		for j, r := range part {
			where[j] = `(property = ? AND tournament = ? AND window_start = ?)`
			args = append(args, r[0], r[1], r[2])
		}
		q := `SELECT property, tournament, window_start, window_end, closed_at, direction, game FROM tournament_windows WHERE ` +
			strings.Join(where, ` OR `) + ` ORDER BY property, tournament, window_start`
		if db.dialect == Postgres {
			q += ` FOR SHARE`
		}
		rs, err := rawQuery(tx, q, args...)
		if err != nil {
			return nil, err
		}
		for rs.Next() {
			var property, tournament string
			var start time.Time
			var row windowRow
			var closedAt sql.NullTime
			if err := rs.Scan(&property, &tournament, &start, &row.end, &closedAt, &row.dir, &row.game); err != nil {
				rs.Close()
				return nil, err
			}
			row.end, row.closed = row.end.UTC(), closedAt.Valid
			out[windowOf(property, tournament, start)] = row
		}
		if err := errors.Join(rs.Err(), rs.Close()); err != nil {
			return nil, err
		}
	}
	if len(out) != len(rows) {
		return nil, fmt.Errorf("store: %d of %d tournament windows found after their insert", len(out), len(rows))
	}
	return out, nil
}

// compareKeys orders rows by their first n columns (strings, then times).
func compareKeys(a, b []any, n int) int {
	for i := range n {
		var c int
		switch x := a[i].(type) {
		case string:
			c = strings.Compare(x, b[i].(string))
		case time.Time:
			c = x.Compare(b[i].(time.Time))
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

// reportsKept is how long a counted score report stays known (pinReports).
const reportsKept = 7 * 24 * time.Hour

type reportKey struct{ property, tournament, user, report string }

// reportOf names what a redelivery of c's score repeats: its play, state, score and the
// play's duration so far (Gamezop redelivers with a new timestamp only). Another report
// of the play (a later state, a new score, a level later with the same score) is another
// report.
func reportOf(c counted) reportKey {
	state, duration := "", ""
	if sc := c.it.event.Score; sc != nil {
		state, duration = sc.State, strconv.FormatInt(sc.Duration, 10)
	}
	report, _ := json.Marshal([]string{c.s.Play, state, c.s.Value.String(), duration}) // strings: cannot fail
	return reportKey{c.it.property, c.s.Tournament, c.it.event.User, string(report)}
}

// pinReports drops from scores those whose report was counted in another window of its
// tournament, noting it on their events: a report counts in one window, the one its
// first copy counted (or was refused) in. A redelivery with a new timestamp in the next
// window ranked there again, and could be paid a second prize. The key holds no window,
// so an applier counting a report another has just counted waits for it and finds its
// row.
//
// The first copy is the one Tally received first (a replay keeps its receipt), then,
// among copies of one group commit, the one made first; the pin keeps both times. By the
// window's start, a redelivery in a window of a new schedule that starts earlier (daily
// to weekly) was taken for the first copy and counted again (review helper 238); by the
// provider's timestamp, an original applied after its redelivery lost its own window
// where windows overlap, and a redelivery stamped before its original counted twice
// (review helper 239). A copy received before the pin's (a
// redelivery was applied before its original, by another applier or because the original
// was replayed) counts in its own window and the pin moves there; the copy counted in
// the other window stays counted.
//
// The reports of refused (refusedReport) are pinned to their windows too, and are not in
// what it returns.
func pinReports(tx *gorm.DB, scores, refused []counted, now time.Time) ([]counted, error) {
	start := func(c counted) time.Time { return c.s.Window.Start.UTC().Truncate(time.Microsecond) } // as stored
	us := func(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
	type pin struct{ start, received, made time.Time }
	before := func(a, b pin) bool {
		return a.received.Before(b.received) || a.received.Equal(b.received) && a.made.Before(b.made)
	}
	all := append(scores[:len(scores):len(scores)], refused...)
	keys := make([]reportKey, len(all)) // each score's, encoded once
	first := map[reportKey]pin{}        // this batch's first copy of each report, then the pin as it stands
	for i, c := range all {
		keys[i] = reportOf(c)
		p := pin{start(c), us(c.it.receivedAt), us(c.s.At)}
		if f, seen := first[keys[i]]; !seen || before(p, f) {
			first[keys[i]] = p
		}
	}
	rows := make([][]any, 0, len(first))
	for k, p := range first {
		rows = append(rows, []any{k.property, k.tournament, k.user, k.report, p.start, now, p.received, p.made})
	}
	slices.SortFunc(rows, func(a, b []any) int { return compareKeys(a, b, 4) }) // one lock order for every batch
	const pinned = `SELECT r.property, r.tournament, r.user_id, r.report, r.window_start, r.received_at, r.made_at`
	read := func(rs *sql.Rows) error {
		defer rs.Close()
		for rs.Next() {
			var k reportKey
			var at time.Time
			var got, made sql.NullTime
			if err := rs.Scan(&k.property, &k.tournament, &k.user, &k.report, &at, &got, &made); err != nil {
				return err
			}
			if !got.Valid {
				// A pin written before 00034, or by an older binary: its window's start
				// stands in, at or before its copy's receipt and time (which are at or
				// after it), so it moves only for a copy received before its window
				// began. Its created_at, when the pin was written, is at or after the
				// receipt: a redelivery received in between was taken for the first copy
				// and counted again (review helper 240).
				got.Time, made.Time = at, at
			}
			first[k] = pin{at.UTC(), got.Time.UTC(), made.Time.UTC()}
		}
		return rs.Err()
	}
	err := inChunks(tx, rows, func(rows [][]any) error {
		if err := insertRows(tx, `INSERT INTO tournament_reports (property, tournament, user_id, report, window_start, created_at, received_at, made_at) VALUES `,
			rows, ` ON CONFLICT (property, tournament, user_id, report) DO NOTHING`); err != nil {
			return err
		}
		look := make([][]any, len(rows))
		for i, r := range rows {
			look[i] = r[:4]
		}
		mine := make(map[reportKey]pin, len(rows)) // this batch's first copies
		for _, r := range rows {
			k := reportKey{r[0].(string), r[1].(string), r[2].(string), r[3].(string)}
			mine[k] = first[k]
		}
		q, args := valuesSQL(pinned+` FROM (VALUES `, look, `) AS v JOIN tournament_reports r ON r.property = v.column1
			AND r.tournament = v.column2 AND r.user_id = v.column3 AND r.report = v.column4`)
		rs, err := rawQuery(tx, q, args...)
		if err != nil {
			return err
		}
		if err := read(rs); err != nil {
			return err
		}
		var moved []reportKey
		for k, m := range mine {
			if before(m, first[k]) {
				moved = append(moved, k) // received before the pin's copy: this batch's is first
			}
		}
		slices.SortFunc(moved, func(a, b reportKey) int { // one lock order for every batch
			return cmp.Or(cmp.Compare(a.property, b.property), cmp.Compare(a.tournament, b.tournament),
				cmp.Compare(a.user, b.user), cmp.Compare(a.report, b.report))
		})
		for _, k := range moved { // the pin moves to a copy received earlier, never to a later one
			m := mine[k]
			n, err := rawExec(tx, `UPDATE tournament_reports SET window_start = ?, received_at = ?, made_at = ? WHERE property = ? AND tournament = ?
				AND user_id = ? AND report = ? AND (COALESCE(received_at, window_start), COALESCE(made_at, window_start)) > (?, ?)`,
				m.start, m.received, m.made, k.property, k.tournament, k.user, k.report, m.received, m.made)
			if err != nil {
				return err
			}
			if n == 1 {
				first[k] = m
				continue
			}
			// Another applier moved it to a copy first still, meanwhile: read where it
			// stands now.
			rs, err := rawQuery(tx, pinned+` FROM tournament_reports r WHERE r.property = ? AND r.tournament = ? AND r.user_id = ? AND r.report = ?`,
				k.property, k.tournament, k.user, k.report)
			if err != nil {
				return err
			}
			if err := read(rs); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := scores[:0:0]
	for i, c := range scores {
		if p := first[keys[i]]; !p.start.Equal(start(c)) {
			c.it.note(fmt.Sprintf("tournament %s: this report of play %s was counted in window %s, or came late for it; not counted again in window %s",
				c.s.Tournament, c.s.Play, p.start.Format(time.RFC3339), c.s.Window.Start.Format(time.RFC3339)))
			continue
		}
		out = append(out, c)
	}
	return out, nil
}

type playKey struct {
	w          windowKey
	user, play string
}

// insertPlays records the plays and returns those not seen before: a play reported
// many times (each state, each redelivery with a new timestamp) counts once.
func insertPlays(tx *gorm.DB, scores []counted) (map[playKey]bool, error) {
	seen := map[playKey]bool{}
	var rows [][]any
	for _, c := range scores {
		k := playKey{windowOf(c.it.property, c.s.Tournament, c.s.Window.Start), c.it.event.User, c.s.Play}
		if !seen[k] {
			seen[k] = true
			rows = append(rows, []any{k.w.property, k.w.tournament, c.s.Window.Start.UTC(), k.user, k.play})
		}
	}
	slices.SortFunc(rows, func(a, b []any) int {
		if c := compareKeys(a, b, 3); c != 0 {
			return c
		}
		return strings.Compare(a[3].(string)+"\x00"+a[4].(string), b[3].(string)+"\x00"+b[4].(string))
	})
	fresh := map[playKey]bool{}
	err := inChunks(tx, rows, func(rows [][]any) error {
		q, args := valuesSQL(`INSERT INTO tournament_plays (property, tournament, window_start, user_id, play) VALUES `, rows,
			` ON CONFLICT DO NOTHING RETURNING property, tournament, window_start, user_id, play`)
		rs, err := rawQuery(tx, q, args...)
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			var k playKey
			var start time.Time
			if err := rs.Scan(&k.w.property, &k.w.tournament, &start, &k.user, &k.play); err != nil {
				return err
			}
			k.w.start = start.UTC().UnixMicro()
			fresh[k] = true
		}
		return rs.Err()
	})
	return fresh, err
}

type standingKey struct {
	w    windowKey
	user string
}

// upsertScores keeps each user's best score per window and adds the new plays. The
// better of the row and the batch's best is decided in the statement, against the row
// as it is under its lock, so concurrent batches of one user cannot lose a best score.
// Each row returns the key it moved from (prev_key; NULL for a new row), and the rank
// buckets are moved to match in the same transaction, in the rows of this
// transaction's shard (rankShard).
func (db *DB) upsertScores(tx *gorm.DB, scores []counted, fresh map[playKey]bool, now time.Time) error {
	type agg struct {
		best  rewards.Standing
		start time.Time
		dir   rewards.Direction
		plays int64
	}
	byUser := map[standingKey]*agg{}
	var order []standingKey
	for _, c := range scores {
		wk := windowOf(c.it.property, c.s.Tournament, c.s.Window.Start)
		k := standingKey{wk, c.it.event.User}
		s := rewards.Standing{User: k.user, Score: c.s.Value, Key: c.s.Key, AchievedAt: c.s.At.Truncate(time.Microsecond), EventID: c.it.id}
		a := byUser[k]
		if a == nil {
			a = &agg{best: s, start: c.s.Window.Start.UTC(), dir: c.dir}
			byUser[k] = a
			order = append(order, k)
		} else if s.Before(a.best) {
			a.best = s
		}
		pk := playKey{wk, k.user, c.s.Play}
		if fresh[pk] {
			a.plays++
			delete(fresh, pk) // one play, counted once even if the batch reports it twice
		}
	}
	slices.SortFunc(order, func(a, b standingKey) int {
		return strings.Compare(a.w.property+"\x00"+a.w.tournament+"\x00"+strconv.FormatInt(a.w.start, 10)+"\x00"+a.user,
			b.w.property+"\x00"+b.w.tournament+"\x00"+strconv.FormatInt(b.w.start, 10)+"\x00"+b.user)
	})
	rows := make([][]any, len(order))
	for i, k := range order {
		a := byUser[k]
		rows[i] = []any{k.w.property, k.w.tournament, a.start, k.user, a.best.Score.String(), a.best.Key,
			rewards.RankBucket(a.best.Key, a.dir, rewards.CoarseDigits), rewards.RankBucket(a.best.Key, a.dir, rewards.FineDigits),
			a.best.AchievedAt.UnixMicro(), a.best.EventID, a.plays, now}
	}
	const better = `(excluded.sort_key, excluded.achieved_us, excluded.event_id) < (tournament_scores.sort_key, tournament_scores.achieved_us, tournament_scores.event_id)`
	pick := func(col string) string {
		return col + ` = CASE WHEN ` + better + ` THEN excluded.` + col + ` ELSE tournament_scores.` + col + ` END`
	}
	type bucketKey struct {
		w      windowKey
		start  time.Time
		level  int
		bucket string
	}
	moves := map[bucketKey]int64{}
	err := inChunks(tx, rows, func(rows [][]any) error {
		q, args := valuesSQL(`INSERT INTO tournament_scores (property, tournament, window_start, user_id, score, sort_key, coarse_bucket,
		fine_bucket, achieved_us, event_id, plays, updated_at) VALUES `, rows, ` ON CONFLICT (property, tournament, window_start, user_id) DO UPDATE SET `+
			pick("score")+`, `+pick("sort_key")+`, `+pick("coarse_bucket")+`, `+pick("fine_bucket")+`, `+pick("achieved_us")+`, `+pick("event_id")+
			`, prev_key = tournament_scores.sort_key, plays = tournament_scores.plays + excluded.plays, updated_at = excluded.updated_at
			RETURNING property, tournament, window_start, user_id, sort_key, prev_key`)
		rs, err := rawQuery(tx, q, args...)
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			var k standingKey
			var start time.Time
			var key string
			var prev sql.NullString
			if err := rs.Scan(&k.w.property, &k.w.tournament, &start, &k.user, &key, &prev); err != nil {
				return err
			}
			k.w.start = start.UTC().UnixMicro()
			a := byUser[k]
			if a == nil {
				return fmt.Errorf("store: upsert returned a row it was not given: %+v", k)
			}
			for _, level := range []int{rewards.CoarseDigits, rewards.FineDigits} {
				to := rewards.RankBucket(key, a.dir, level)
				if prev.Valid {
					from := rewards.RankBucket(prev.String, a.dir, level)
					if from == to {
						continue
					}
					moves[bucketKey{k.w, a.start, level, from}]--
				}
				moves[bucketKey{k.w, a.start, level, to}]++
			}
		}
		return rs.Err()
	})
	if err != nil || len(moves) == 0 {
		return err
	}
	keys := make([]bucketKey, 0, len(moves))
	for k, n := range moves {
		if n != 0 {
			keys = append(keys, k)
		}
	}
	// Bucket rows are shared by many users: taken in one order by every applier.
	slices.SortFunc(keys, func(a, b bucketKey) int {
		return strings.Compare(a.w.property+"\x00"+a.w.tournament+"\x00"+strconv.FormatInt(a.w.start, 10)+"\x00"+strconv.Itoa(a.level)+a.bucket,
			b.w.property+"\x00"+b.w.tournament+"\x00"+strconv.FormatInt(b.w.start, 10)+"\x00"+strconv.Itoa(b.level)+b.bucket)
	})
	if len(keys) == 0 {
		return nil
	}
	shard, err := db.rankShard(tx)
	if err != nil {
		return err
	}
	brows := make([][]any, len(keys))
	for i, k := range keys {
		brows[i] = []any{k.w.property, k.w.tournament, k.start, k.level, k.bucket, shard, moves[k]}
	}
	return insertRows(tx, `INSERT INTO tournament_rank_buckets (property, tournament, window_start, level, bucket, shard, users) VALUES `, brows,
		` ON CONFLICT (property, tournament, window_start, level, bucket, shard) DO UPDATE SET users = tournament_rank_buckets.users + excluded.users`)
}

// rankShards is how many rows one rank bucket's count may be spread over: the most
// score writers that add to one bucket at once without waiting for each other.
const rankShards = 16

// rankShard picks the shard whose bucket rows this transaction adds to: on Postgres the
// lowest one no other transaction holds, held (a transaction-level advisory lock) until
// this one ends, so concurrent score writers add to different rows and never wait for
// each other on a bucket; a lone writer keeps to shard 0, so the rows a rank is counted
// from only multiply when writers really run at once. With more writers than shards, a
// random shard: the writer may then wait on a bucket, never miscount. SQLite has one
// writer at a time: shard 0.
func (db *DB) rankShard(tx *gorm.DB) (int, error) {
	if db.dialect != Postgres {
		return 0, nil
	}
	var got []int
	if err := query(tx, &got, `SELECT s FROM generate_series(0, `+strconv.Itoa(rankShards-1)+`) AS s
		WHERE pg_try_advisory_xact_lock(hashtext('tally.tournament_rank_shard'), s) LIMIT 1`); err != nil {
		return 0, err
	}
	if len(got) == 1 {
		return got[0], nil
	}
	return rand.IntN(rankShards), nil
}

// TournamentEventsWaiting reports whether scores of the property's game received in
// window w (from its start to its end + grace) still wait for the applier: one of them
// may yet count in it.
func (db *DB) TournamentEventsWaiting(ctx context.Context, property, game string, w rewards.Window) (bool, error) {
	waiting, err := eventsWaiting(db.gorm.WithContext(ctx), property, game, w)
	return waiting, translate(err)
}

// eventsWaiting asks only for scores of the game: any other event waiting (a session, an
// achievement, a score of another game) cannot count in the window. Counted, it kept a
// window closing while the applier was behind, and let a replayed score, quarantined in
// time and replayed hours after the window's grace, open it alone and be paid the whole
// pool. The recorded rows are the applier's backlog (inbox_recorded), so reading each
// one's game from its stored event is cheap (gameScoresFrom).
func eventsWaiting(tx *gorm.DB, property, game string, w rewards.Window) (bool, error) {
	var ids []int64
	err := query(tx, &ids, `SELECT id `+gameScoresFrom(tx, rewards.StatusRecorded)+` LIMIT 1`, gameScoresArgs(property, game, w)...)
	return len(ids) > 0, err
}

// quarantinedScores counts the scores of property's game received in window w that are
// kept quarantined: a close ranks without them, and says so (WindowClose).
func quarantinedScores(tx *gorm.DB, property, game string, w rewards.Window) (int64, error) {
	var n []int64
	err := query(tx, &n, `SELECT COUNT(*) `+gameScoresFrom(tx, rewards.StatusQuarantined), gameScoresArgs(property, game, w)...)
	if err != nil || len(n) == 0 {
		return 0, err
	}
	return n[0], nil
}

// gameScoresFrom selects the inbox events of one status that are scores of a game of a
// property received in a window (gameScoresArgs): from its start, since a score is
// made no later than it is received, to its end + grace. The rows of a status are few
// (the backlog, the quarantine) and found by its partial index, so reading each one's
// game from its stored event is cheap.
func gameScoresFrom(tx *gorm.DB, status string) string {
	gameOf := `json_extract(event, '$.score.game')`
	if tx.Dialector.Name() == string(Postgres) {
		gameOf = `(event::jsonb -> 'score' ->> 'game')`
	}
	return `FROM inbox WHERE status = ` + statusLiteral(status) + ` AND property = ? AND received_at >= ? AND received_at < ?
		AND kind = ? AND ` + gameOf + ` = ?`
}

func gameScoresArgs(property, game string, w rewards.Window) []any {
	return []any{property, w.Start.UTC(), w.ClosesAt.UTC(), string(rewards.KindScore), game}
}

// OpenTournamentWindows lists the windows that have scores and have not closed, whose
// end is before before: the closer's work list.
func (db *DB) OpenTournamentWindows(ctx context.Context, before time.Time) ([]rewards.WindowRecord, error) {
	var out []rewards.WindowRecord
	rs, err := rawQuery(db.gorm.WithContext(ctx), `SELECT property, tournament, window_start, window_end FROM tournament_windows
		WHERE closed_at IS NULL AND window_end <= ? ORDER BY window_end, property, tournament`, before.UTC())
	if err != nil {
		return nil, translate(err)
	}
	defer rs.Close()
	for rs.Next() {
		r := rewards.WindowRecord{Exists: true, Paid: decimal.Zero}
		if err := rs.Scan(&r.Property, &r.Tournament, &r.Start, &r.End); err != nil {
			return nil, translate(err)
		}
		r.Start, r.End = r.Start.UTC(), r.End.UTC()
		out = append(out, r)
	}
	return out, translate(rs.Err())
}

// CloseTournamentWindow closes window w of tournament t: it ranks the window's
// leaderboard, credits each prize (rewards.Awards) to the winner's pending through the
// wallet as a prize entry, records the prizes and the final ranking, and marks the
// window closed (with w.ClosesAt), all in one transaction. It does it once: the window's row is locked first, and a window found
// closed pays nothing again (CloseAlready); each prize's claim and the prizes' key back
// that up. Before end + grace it does nothing (CloseNotDue); while events received
// before end + grace wait for the applier it does nothing (CloseWaiting), so a late
// but timely score is never left out of the ranking.
func (db *DB) CloseTournamentWindow(ctx context.Context, property string, t rewards.Tournament, w rewards.Window) (rewards.WindowClose, error) {
	return db.closeWindow(ctx, property, t, w, nil)
}

func (db *DB) closeWindow(ctx context.Context, property string, t rewards.Tournament, w rewards.Window,
	beforeCommit func(*gorm.DB) error) (rewards.WindowClose, error) {
	var out rewards.WindowClose
	err := db.tx(ctx, func(tx *gorm.DB) error {
		out = rewards.WindowClose{Property: property, Tournament: t.ID, Window: w, Paid: decimal.Zero}
		now := db.now()
		if now.Before(w.ClosesAt) {
			out.Outcome = rewards.CloseNotDue
			return nil
		}
		start := w.Start.UTC()
		if _, err := rawExec(tx, `INSERT INTO tournament_windows (property, tournament, window_start, window_end, created_at)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (property, tournament, window_start) DO NOTHING`, property, t.ID, start, w.End.UTC(), now); err != nil {
			return err
		}
		lock := `SELECT closed_at, game FROM tournament_windows WHERE property = ? AND tournament = ? AND window_start = ?`
		if db.dialect == Postgres {
			lock += ` FOR UPDATE`
		}
		rs, err := rawQuery(tx, lock, property, t.ID, start)
		if err != nil {
			return err
		}
		var closedAt sql.NullTime
		var game string
		if rs.Next() {
			err = rs.Scan(&closedAt, &game)
		}
		if err = errors.Join(err, rs.Close()); err != nil {
			return err
		}
		if closedAt.Valid {
			out.Outcome = rewards.CloseAlready
			return nil
		}
		// The lock gave this transaction its id (on SQLite it holds the write lock), so
		// what it stamps from here is waited for by a payout report's cut (report.go).
		now = db.now()
		// The window ranks the game it began with (00031), whatever the config names now:
		// its scores are what the close waits for and what quarantined ones would miss.
		if game == "" {
			game = t.Game
		}
		if waiting, err := eventsWaiting(tx, property, game, w); err != nil || waiting {
			out.Outcome = rewards.CloseWaiting
			return err
		}
		rs, err = rawQuery(tx, `SELECT `+leaderboardColumns+leaderboardFrom+` WHERE s.property = ? AND s.tournament = ? AND s.window_start = ?`,
			property, t.ID, start)
		if err != nil {
			return err
		}
		var standings []rewards.Standing
		for rs.Next() {
			s, _, err := scanStanding(rs)
			if err != nil {
				rs.Close()
				return err
			}
			standings = append(standings, s)
		}
		if err := rs.Close(); err != nil {
			return err
		}
		if out.Quarantined, err = quarantinedScores(tx, property, game, w); err != nil {
			return err
		}
		ranked := rewards.Rank(standings, t.Ties, t.MinPlays)
		out.Awards = rewards.Awards(ranked, t.Prizes, t.Scale)
		out.Ranked = int64(len(ranked))
		if err := db.payPrizes(tx, property, t, w, out.Awards, now); err != nil {
			return err
		}
		for _, a := range out.Awards {
			out.Paid = out.Paid.Add(a.Amount)
		}
		if err := saveFinalBoard(tx, property, t.ID, start, standings, ranked, out.Awards); err != nil {
			return err
		}
		// window_end too: a one-window tournament extended (rewards.Tournament.Recorded)
		// after its last score kept the row's old end, and its record must show the end
		// it closed at.
		n, err := rawExec(tx, `UPDATE tournament_windows SET closed_at = ?, window_end = ?, closes_at = ?, rule_version = ?, ranked = ?, paid = ?,
			final_board = ? WHERE property = ? AND tournament = ? AND window_start = ? AND closed_at IS NULL`,
			now, w.End.UTC(), w.ClosesAt.UTC(), t.Version, out.Ranked, out.Paid.String(), true, property, t.ID, start)
		if err != nil {
			return err
		}
		if n != 1 {
			return fmt.Errorf("store: closed %d rows of window %s %s", n, t.ID, start)
		}
		// The plays only dedupe scores of an open window; the board keeps their count.
		if _, err := rawExec(tx, `DELETE FROM tournament_plays WHERE property = ? AND tournament = ? AND window_start = ?`,
			property, t.ID, start); err != nil {
			return err
		}
		// Reports are kept a week for pinReports, whichever window they were counted in.
		if _, err := rawExec(tx, `DELETE FROM tournament_reports WHERE property = ? AND tournament = ? AND created_at < ?`,
			property, t.ID, now.Add(-reportsKept)); err != nil {
			return err
		}
		out.Outcome = rewards.CloseDone
		if beforeCommit != nil {
			return beforeCommit(tx)
		}
		return nil
	})
	if err != nil {
		return rewards.WindowClose{}, err
	}
	return out, nil
}

// saveFinalBoard stores the window's final ranking as the close made it: every user
// with a score, ranked (rank NULL: fewer plays than min_plays) and with the prize paid.
func saveFinalBoard(tx *gorm.DB, property, tournament string, start time.Time, standings []rewards.Standing, ranked []rewards.Ranked,
	awards []rewards.Award) error {
	rankOf := make(map[string]int64, len(ranked))
	for _, r := range ranked {
		rankOf[r.User] = r.Rank
	}
	prizeOf := make(map[string]string, len(awards))
	for _, a := range awards {
		prizeOf[a.User] = a.Amount.String()
	}
	rows := make([][]any, len(standings))
	for i, s := range standings {
		var rank, prize any // NULL unless set
		if r, ok := rankOf[s.User]; ok {
			rank = r
		}
		if p, ok := prizeOf[s.User]; ok {
			prize = p
		}
		rows[i] = []any{property, tournament, start, s.User, rank, s.Score.String(), s.Key, s.AchievedAt.UnixMicro(), s.EventID, s.Plays, prize}
	}
	return insertRows(tx, `INSERT INTO tournament_results (property, tournament, window_start, user_id, rank, score, sort_key, achieved_us,
		event_id, plays, prize) VALUES `, rows, "")
}

// payPrizes credits each award through the winner's wallet, locked in user order, and
// records it.
func (db *DB) payPrizes(tx *gorm.DB, property string, t rewards.Tournament, w rewards.Window, awards []rewards.Award, now time.Time) error {
	if len(awards) == 0 {
		return nil
	}
	byUser := make(map[string]rewards.Award, len(awards))
	users := make([]string, 0, len(awards))
	for _, a := range awards {
		byUser[a.User] = a
		users = append(users, a.User)
	}
	slices.Sort(users) // the lock order (property, user), across chunks too
	l := db.newLedger(tx)
	var locked []*wallet
	var prizes [][]any
	per := walletChunk(tx)
	for i := 0; i < len(users); i += per {
		keys := make([]walletKey, 0, per)
		for _, u := range users[i:min(i+per, len(users))] {
			keys = append(keys, walletKey{property, u})
		}
		ws, err := lockWallets(tx, keys, now)
		if err != nil {
			return err
		}
		for _, k := range keys {
			wl, a := ws[k], byUser[k.user]
			at := wl.stamp(now) // a wallet written later than now (a clock behind) keeps its order
			e := t.PrizeEntry(w, a, at)
			next, err := wl.Wallet.Post(e)
			if err != nil {
				return fmt.Errorf("prize to %q: %w", k.user, err)
			}
			ref := rewards.PrizeRef(t.ID, w, a.Rank)
			l.add(wl, e, posting{ref: ref, at: at})
			wl.set(next, at)
			locked = append(locked, wl)
			prizes = append(prizes, []any{property, t.ID, w.Start.UTC(), k.user, a.Rank, a.Amount.String(), ref, now})
		}
	}
	if err := l.flush(); err != nil {
		return err
	}
	if err := db.saveWallets(tx, locked); err != nil {
		return err
	}
	return insertRows(tx, `INSERT INTO tournament_prizes (property, tournament, window_start, user_id, rank, amount, ref, created_at) VALUES `,
		prizes, "")
}
