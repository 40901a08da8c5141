package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"tally/rewards"
)

// The publisher's tournament reads: which window is current, a window's record, a page
// of its leaderboard and a user's own row. On Postgres they run on the read pool, as the
// other hot publisher reads do (reads.go; a batch takes a page slot, like a page of
// transactions), and the statements one answer needs go in one pgx batch: one round
// trip, one pool checkout, one context watch, where database/sql and gorm took four or
// five of each. Each statement of a batch still sees what was committed when it began,
// as separate statements did. On SQLite they run one after the other through gorm.
//
// A page's size, min_plays and the rank bucket levels are written into the statements
// as numbers, not passed as parameters: with a parameter in LIMIT or in the plays bound,
// Postgres's plan for a parameter's value always looks cheaper than its plan for any
// value, so it plans the prepared statement again at every execution; written in, it
// keeps one plan per statement and connection, which spent less than half the CPU per
// page. A page size is one of at most 500 numbers, min_plays one per tournament: the
// read pool's cache of prepared statements holds them.
//
// Which board a page comes from depends on the window's record, read in the same batch:
// the page is read from the board the window most likely has (boardOf) and read again,
// in a second round trip, only when the record says otherwise.

// rowScanner is what a tournament read scans: *sql.Rows through gorm, pgx.Rows on the
// read pool.
type rowScanner interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// boardRead is one statement (`?` placeholders) and what reads its rows.
type boardRead struct {
	sql  string
	args []any
	scan func(rowScanner) error
}

// readBoard runs reads: on the read pool in one batch, else one after the other.
func (db *DB) readBoard(ctx context.Context, reads ...boardRead) error {
	if db.reads == nil {
		g := db.gorm.WithContext(ctx)
		for _, r := range reads {
			rs, err := rawQuery(g, r.sql, r.args...)
			if err != nil {
				return err
			}
			err = r.scan(rs)
			if cerr := rs.Close(); err == nil {
				err = cerr
			}
			if err == nil {
				err = rs.Err()
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	// A batch holds its connection as a page read does: it takes a page slot, so the
	// balance readers always find theirs (reads.go).
	release, err := db.pageSlot(ctx)
	if err != nil {
		return err
	}
	defer release()
	b := &pgx.Batch{}
	for _, r := range reads {
		b.Queue(numbered(r.sql), r.args...)
	}
	br := db.reads.SendBatch(ctx, b)
	for _, r := range reads {
		rows, err := br.Query()
		if err == nil {
			err = r.scan(rows)
			rows.Close()
			if err == nil {
				err = rows.Err()
			}
		}
		if err != nil {
			_ = br.Close()
			return err
		}
	}
	return br.Close()
}

// windowColumns are a window's record, as scanWindow reads them.
const windowColumns = `window_start, window_end, closed_at, closes_at, ranked, paid, final_board, game`

func scanWindow(rs rowScanner, property, tournament string) (rewards.WindowRecord, error) {
	rec := rewards.WindowRecord{Property: property, Tournament: tournament, Exists: true, Paid: decimal.Zero}
	var closedAt, closesAt sql.NullTime
	var ranked sql.NullInt64
	var paid decimalColumn
	if err := rs.Scan(&rec.Start, &rec.End, &closedAt, &closesAt, &ranked, &paid, &rec.FinalBoard, &rec.Game); err != nil {
		return rec, err
	}
	rec.Start, rec.End = rec.Start.UTC(), rec.End.UTC()
	if closedAt.Valid {
		rec.ClosedAt, rec.Ranked = closedAt.Time.UTC(), ranked.Int64
		if closesAt.Valid {
			rec.ClosesAt = closesAt.Time.UTC()
		}
		if paid.Valid {
			rec.Paid = paid.Decimal
		}
	}
	return rec, nil
}

// noRecord is the record of a window in which no score has counted.
func noRecord(property, tournament string, start time.Time) rewards.WindowRecord {
	return rewards.WindowRecord{Property: property, Tournament: tournament, Start: start.UTC(), Paid: decimal.Zero}
}

// windowRead reads the record of the window starting at start into rec (left as it is
// when the window has none).
func windowRead(property, tournament string, start time.Time, rec *rewards.WindowRecord) boardRead {
	return boardRead{
		sql:  `SELECT ` + windowColumns + ` FROM tournament_windows WHERE property = ? AND tournament = ? AND window_start = ?`,
		args: []any{property, tournament, start.UTC()},
		scan: func(rs rowScanner) error {
			if !rs.Next() {
				return nil
			}
			var err error
			*rec, err = scanWindow(rs, property, tournament)
			return err
		},
	}
}

// TournamentWindow reads what the store knows of one window.
func (db *DB) TournamentWindow(ctx context.Context, property, tournament string, start time.Time) (rewards.WindowRecord, error) {
	rec := noRecord(property, tournament, start)
	err := db.readBoard(ctx, windowRead(property, tournament, start, &rec))
	return rec, translate(err)
}

// currentWindowsRead reads, in one statement, the records the current window is chosen
// from (currentOf): the earliest window of t that has begun by now, has not closed and
// whose end + grace (grace as configured now) is after now, and, when ok, the windows
// that start inside the schedule's sched: sched's own, or those of an earlier, shorter
// schedule that began where sched does, and sched's rest (restOf).
func currentWindowsRead(property string, t rewards.Tournament, sched rewards.Window, ok bool, now time.Time,
	recs *[]rewards.WindowRecord) boardRead {
	q := `SELECT ` + windowColumns + ` FROM (SELECT ` + windowColumns + ` FROM tournament_windows WHERE property = ? AND tournament = ?
		AND window_start <= ? AND closed_at IS NULL AND window_end > ? ORDER BY window_start LIMIT 1) AS begun`
	args := []any{property, t.ID, now.UTC(), now.Add(-t.Grace).UTC()}
	if ok {
		q += ` UNION ALL SELECT ` + windowColumns + ` FROM tournament_windows WHERE property = ? AND tournament = ?
			AND window_start >= ? AND window_start < ?`
		args = append(args, property, t.ID, sched.Start.UTC(), sched.End.UTC())
	}
	return boardRead{sql: q, args: args, scan: func(rs rowScanner) error {
		for rs.Next() {
			rec, err := scanWindow(rs, property, t.ID)
			if err != nil {
				return err
			}
			*recs = append(*recs, rec)
		}
		return nil
	}}
}

// currentOf is the window a publisher means by "current" at now, with its record: the
// schedule's current window sched (when ok: rewards.Tournament.Current), unless a window
// that began earlier is still open or in its grace by the end it began with (the
// schedule or duration changed since). When windows of an earlier, shorter schedule
// began where sched starts, it is the one of them not yet closed or past its grace,
// else sched's rest after them (restOf). recs are what currentWindowsRead read: only
// the begun window can start before sched.
func currentOf(property string, t rewards.Tournament, sched rewards.Window, ok bool, recs []rewards.WindowRecord,
	now time.Time) (rewards.Window, rewards.WindowRecord, bool) {
	for _, r := range recs {
		if !ok || r.Start.Before(sched.Start) {
			return t.Recorded(rewards.Window{Start: r.Start}, r), r, true
		}
	}
	if !ok {
		return sched, noRecord(property, t.ID, sched.Start), false
	}
	w := sched
	for {
		i := slices.IndexFunc(recs, func(r rewards.WindowRecord) bool { return r.Start.Equal(w.Start) })
		if i < 0 {
			return w, noRecord(property, t.ID, w.Start), true
		}
		r := recs[i]
		if t.Next == nil || !r.End.Before(sched.End) || !r.End.After(w.Start) {
			return w, r, true
		}
		if rw := t.Recorded(rewards.Window{Start: r.Start}, r); r.ClosedAt.IsZero() && now.Before(rw.ClosesAt) {
			return rw, r, true
		}
		w = rewards.Window{Start: r.End.UTC(), End: sched.End, ClosesAt: sched.ClosesAt}
	}
}

// CurrentTournamentWindow is the window of t a publisher means by "current" at now, and
// its record (see currentOf); ok is false when there is none (the schedule has no next
// window and none that began is still open).
func (db *DB) CurrentTournamentWindow(ctx context.Context, property string, t rewards.Tournament, now time.Time) (rewards.Window,
	rewards.WindowRecord, bool, error) {
	sched, ok := t.Current(now)
	var recs []rewards.WindowRecord
	if err := db.readBoard(ctx, currentWindowsRead(property, t, sched, ok, now, &recs)); err != nil {
		return rewards.Window{}, rewards.WindowRecord{}, false, translate(err)
	}
	w, rec, ok := currentOf(property, t, sched, ok, recs, now)
	return w, rec, ok, nil
}

// leaderboardCursor is where a page ended: the window, the last row's order and the
// ranker's state.
type leaderboardCursor struct {
	ranker   rewards.Ranker
	achieved int64
	event    int64
	// window is the start of the window whose board the cursor pages, in unix
	// nanoseconds (a one-window tournament may start between two microseconds, and
	// SQLite keeps its start whole); named is false for a cursor issued before cursors
	// named it.
	window int64
	named  bool
}

// encode: position.rank.key.achieved_us.event_id.window_start_ns, base64url. Not a
// secret, only opaque.
func (c leaderboardCursor) encode(window time.Time) string {
	s := fmt.Sprintf("%d.%d.%s.%d.%d.%d", c.ranker.Position, c.ranker.Rank, c.ranker.LastKey, c.achieved, c.event, window.UnixNano())
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

// decodeLeaderboardCursor reads a cursor; one of five parts, from before cursors named
// their window, is taken without one.
func decodeLeaderboardCursor(s string, ties rewards.Ties) (leaderboardCursor, error) {
	bad := fmt.Errorf("store: leaderboard cursor: %w", rewards.ErrBadCursor)
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return leaderboardCursor{}, bad
	}
	parts := strings.Split(string(b), ".")
	if (len(parts) != 5 && len(parts) != 6) || len(parts[2]) != 38 || strings.Trim(parts[2], "0123456789") != "" {
		return leaderboardCursor{}, bad
	}
	numbers := append([]string{parts[0], parts[1]}, parts[3:]...)
	n := make([]int64, len(numbers))
	for i, p := range numbers {
		if n[i], err = strconv.ParseInt(p, 10, 64); err != nil || n[i] < 0 {
			return leaderboardCursor{}, bad
		}
	}
	if n[0] < 1 || n[1] < 1 || n[1] > n[0] {
		return leaderboardCursor{}, bad
	}
	c := leaderboardCursor{ranker: rewards.Ranker{Ties: ties, Position: n[0], Rank: n[1], LastKey: parts[2]}, achieved: n[2], event: n[3]}
	if len(n) == 5 {
		c.window, c.named = n[4], true
	}
	return c, nil
}

// cursorOf is where q's page starts: its cursor, or the top of the board. A cursor of
// another window is refused: its position and ranks are another board's.
func cursorOf(q rewards.LeaderboardQuery) (leaderboardCursor, error) {
	if q.Cursor == "" {
		return leaderboardCursor{ranker: rewards.Ranker{Ties: q.Tournament.Ties}}, nil
	}
	c, err := decodeLeaderboardCursor(q.Cursor, q.Tournament.Ties)
	if err == nil && !q.Window.Start.IsZero() {
		err = c.of(q.Window)
	}
	return c, err
}

// of refuses a cursor issued for another window than w.
func (c leaderboardCursor) of(w rewards.Window) error {
	// Compared at the databases' precision: on Postgres a window whose configured start
	// falls between two microseconds is also named by its record's start, cut to the
	// microsecond (window=current reads that), and both name the one board.
	if c.named && !time.Unix(0, c.window).Truncate(time.Microsecond).Equal(w.Start.Truncate(time.Microsecond)) {
		return fmt.Errorf("store: leaderboard cursor of the window starting %s, not %s: %w",
			time.Unix(0, c.window).UTC().Format(time.RFC3339Nano), w.Start.UTC().Format(time.RFC3339Nano), rewards.ErrBadCursor)
	}
	return nil
}

// leaderboardColumns and leaderboardFrom read the scores with the prizes paid;
// liveColumns and liveFrom the scores alone, for a window not closed.
const (
	leaderboardColumns = `s.user_id, s.score, s.sort_key, s.achieved_us, s.event_id, s.plays, p.amount`
	leaderboardFrom    = ` FROM tournament_scores s LEFT JOIN tournament_prizes p ON p.property = s.property AND p.tournament = s.tournament
	AND p.window_start = s.window_start AND p.user_id = s.user_id`
	liveColumns = `s.user_id, s.score, s.sort_key, s.achieved_us, s.event_id, s.plays, NULL`
	liveFrom    = ` FROM tournament_scores s`
)

// standingFrom is the select list and FROM of a live page or row, with the prizes paid
// or without.
func standingFrom(paid bool) (columns, from string) {
	if paid {
		return leaderboardColumns, leaderboardFrom
	}
	return liveColumns, liveFrom
}

func scanStanding(rs rowScanner) (rewards.Standing, *decimal.Decimal, error) {
	var s rewards.Standing
	var achieved int64
	var score, prize decimalColumn
	if err := rs.Scan(&s.User, &score, &s.Key, &achieved, &s.EventID, &s.Plays, &prize); err != nil {
		return s, nil, err
	}
	s.Score, s.AchievedAt = score.Decimal, time.UnixMicro(achieved).UTC()
	if prize.Valid {
		return s, &prize.Decimal, nil
	}
	return s, nil, nil
}

// board is where a window's leaderboard is read from.
type board int

const (
	// liveBoard: the scores of a window that has not closed. Nothing is paid before the
	// close, so the rows are read without looking for prizes.
	liveBoard board = iota
	// paidBoard: the scores and the prizes paid, of a window closed before the close
	// stored its final ranking (migration 00009).
	paidBoard
	// finalBoard: the final ranking the close stored.
	finalBoard
)

// boardOf is the board of a window with record rec.
func boardOf(rec rewards.WindowRecord) board {
	switch {
	case rec.FinalBoard:
		return finalBoard
	case !rec.ClosedAt.IsZero():
		return paidBoard
	}
	return liveBoard
}

// likelyBoard is the board window w most likely has at now, before its record is read:
// the final one once its end + grace has passed (the closer closes it then), else the
// live one.
func likelyBoard(w rewards.Window, now time.Time) board {
	if now.Before(w.ClosesAt) {
		return liveBoard
	}
	return finalBoard
}

// boardPage is what the page reads of one board found: a page, the next page's cursor,
// the asked-for user's row.
type boardPage struct {
	rows    []rewards.LeaderboardRow
	next    string
	userRow *rewards.LeaderboardRow
}

// pageReads are the statements of q's page of board b from cur, and of q.User's own row
// when asked for, read into p. A page is an index range scan from the cursor: its cost
// does not grow with the participants.
func pageReads(q rewards.LeaderboardQuery, cur leaderboardCursor, b board, p *boardPage) []boardRead {
	limit := max(q.Limit, 1)
	reads := make([]boardRead, 0, 2)
	if b == finalBoard {
		reads = append(reads, finalPageRead(q, cur, limit, p))
		if q.User != "" {
			reads = append(reads, finalUserRead(q, p))
		}
		return reads
	}
	reads = append(reads, livePageRead(q, cur, limit, b == paidBoard, p))
	if q.User != "" {
		reads = append(reads, liveUserRead(q, b == paidBoard, p))
	}
	return reads
}

// livePageRead reads a page of the scores in rank order, with the prizes paid (paid) or
// without, limit + 1 rows: the one past the page says that there is a next one.
func livePageRead(q rewards.LeaderboardQuery, cur leaderboardCursor, limit int, paid bool, p *boardPage) boardRead {
	args := []any{q.Property, q.Tournament.ID, q.Window.Start.UTC()}
	columns, from := standingFrom(paid)
	sqlq := `SELECT ` + columns + from + ` WHERE s.property = ? AND s.tournament = ? AND s.window_start = ? AND s.plays >= ` +
		strconv.FormatInt(q.Tournament.MinPlays, 10)
	if q.Cursor != "" {
		sqlq += ` AND (s.sort_key, s.achieved_us, s.event_id) > (?, ?, ?)`
		args = append(args, cur.ranker.LastKey, cur.achieved, cur.event)
	}
	sqlq += ` ORDER BY s.sort_key, s.achieved_us, s.event_id LIMIT ` + strconv.Itoa(limit+1)
	return boardRead{sql: sqlq, args: args, scan: func(rs rowScanner) error {
		p.rows = make([]rewards.LeaderboardRow, 0, min(limit, 64))
		for rs.Next() {
			s, prize, err := scanStanding(rs)
			if err != nil {
				return err
			}
			if len(p.rows) == limit {
				p.next = cur.encode(q.Window.Start)
				break
			}
			rank := cur.ranker.Next(s)
			cur.achieved, cur.event = s.AchievedAt.UnixMicro(), s.EventID
			p.rows = append(p.rows, rewards.LeaderboardRow{Rank: rank, User: s.User, Score: s.Score, AchievedAt: s.AchievedAt, Plays: s.Plays,
				Prize: prize})
		}
		return nil
	}}
}

// liveUserRead reads q.User's row and rank from the scores, with the prize paid (paid) or
// without: 1 + the rows ahead of it
// (with ties split, the rows with a strictly better score), counted in the same
// statement. With min_plays 1 every row is ranked and the rows ahead are the users of
// the coarse rank buckets ahead, plus those of the fine buckets ahead inside the user's
// coarse bucket, plus the rows ahead in the user's fine bucket. With min_plays above 1
// the buckets would count users that are not ranked, so the ranked rows ahead are
// counted instead (slower).
func liveUserRead(q rewards.LeaderboardQuery, paid bool, p *boardPage) boardRead {
	t := q.Tournament
	ahead := `x.sort_key < s.sort_key`
	if t.Ties == rewards.TiesFirst {
		ahead = `(x.sort_key, x.achieved_us, x.event_id) < (s.sort_key, s.achieved_us, s.event_id)`
	}
	sameWindow := `property = s.property AND tournament = s.tournament AND window_start = s.window_start`
	xSameWindow := `x.` + strings.ReplaceAll(sameWindow, " AND ", " AND x.")
	var counts string
	if t.MinPlays <= 1 {
		counts = `(SELECT COUNT(*) FROM tournament_scores x WHERE ` + xSameWindow + ` AND x.sort_key >= s.fine_bucket AND ` + ahead + `),
		(SELECT SUM(users) FROM tournament_rank_buckets WHERE ` + sameWindow + ` AND level = ` + strconv.Itoa(rewards.CoarseDigits) + `
			AND bucket < s.coarse_bucket),
		(SELECT SUM(users) FROM tournament_rank_buckets WHERE ` + sameWindow + ` AND level = ` + strconv.Itoa(rewards.FineDigits) + `
			AND bucket >= s.coarse_bucket AND bucket < s.fine_bucket)`
	} else {
		counts = `(SELECT COUNT(*) FROM tournament_scores x WHERE ` + xSameWindow + ` AND x.plays >= ` + strconv.FormatInt(t.MinPlays, 10) +
			` AND ` + ahead + `), NULL, NULL`
	}
	columns, from := standingFrom(paid)
	return boardRead{
		sql: `SELECT ` + columns + `, ` + counts + from +
			` WHERE s.property = ? AND s.tournament = ? AND s.window_start = ? AND s.user_id = ?`,
		args: []any{q.Property, t.ID, q.Window.Start.UTC(), q.User},
		scan: func(rs rowScanner) error {
			if !rs.Next() {
				return nil
			}
			var s rewards.Standing
			var achieved, rowsAhead int64
			var score, prize, coarseSum, fineSum decimalColumn // SUM is NULL over no rows, and a numeric on Postgres
			if err := rs.Scan(&s.User, &score, &s.Key, &achieved, &s.EventID, &s.Plays, &prize, &rowsAhead, &coarseSum, &fineSum); err != nil {
				return err
			}
			row := &rewards.LeaderboardRow{User: s.User, Score: score.Decimal, AchievedAt: time.UnixMicro(achieved).UTC(), Plays: s.Plays}
			if prize.Valid {
				row.Prize = &prize.Decimal
			}
			if s.Plays >= t.MinPlays { // else not ranked
				row.Rank = 1 + coarseSum.Decimal.IntPart() + fineSum.Decimal.IntPart() + rowsAhead // a NULL sum is zero
			}
			p.userRow = row
			return nil
		},
	}
}

const finalColumns = `user_id, rank, score, sort_key, achieved_us, event_id, plays, prize`

func scanFinal(rs rowScanner) (rewards.LeaderboardRow, string, int64, error) {
	var r rewards.LeaderboardRow
	var rank sql.NullInt64
	var key string
	var achieved, event int64
	var score, prize decimalColumn
	if err := rs.Scan(&r.User, &rank, &score, &key, &achieved, &event, &r.Plays, &prize); err != nil {
		return r, "", 0, err
	}
	r.Score = score.Decimal
	r.Rank, r.AchievedAt = rank.Int64, time.UnixMicro(achieved).UTC() // a NULL rank is 0: not ranked
	if prize.Valid {
		r.Prize = &prize.Decimal
	}
	return r, key, event, nil
}

// finalPageRead reads a page of a closed window's final ranking as the close stored it:
// the ranks, the ranked users and the prizes of the day, whatever the config says now.
// The page is in the live board's order, so a cursor issued before the close goes on
// after it.
func finalPageRead(q rewards.LeaderboardQuery, cur leaderboardCursor, limit int, p *boardPage) boardRead {
	args := []any{q.Property, q.Tournament.ID, q.Window.Start.UTC()}
	sqlq := `SELECT ` + finalColumns + ` FROM tournament_results WHERE property = ? AND tournament = ? AND window_start = ? AND rank IS NOT NULL`
	if q.Cursor != "" {
		sqlq += ` AND (sort_key, achieved_us, event_id) > (?, ?, ?)`
		args = append(args, cur.ranker.LastKey, cur.achieved, cur.event)
	}
	sqlq += ` ORDER BY sort_key, achieved_us, event_id LIMIT ` + strconv.Itoa(limit+1)
	return boardRead{sql: sqlq, args: args, scan: func(rs rowScanner) error {
		p.rows = make([]rewards.LeaderboardRow, 0, min(limit, 64))
		for rs.Next() {
			r, key, event, err := scanFinal(rs)
			if err != nil {
				return err
			}
			if len(p.rows) == limit {
				p.next = cur.encode(q.Window.Start)
				break
			}
			// The cursor carries the stored rank; its position only has to stay at or
			// above it (a cursor from the live board may have counted otherwise).
			cur.ranker.Position = max(cur.ranker.Position+1, r.Rank)
			cur.ranker.Rank, cur.ranker.LastKey = r.Rank, key
			cur.achieved, cur.event = r.AchievedAt.UnixMicro(), event
			p.rows = append(p.rows, r)
		}
		return nil
	}}
}

// finalUserRead reads q.User's row of a closed window's final ranking.
func finalUserRead(q rewards.LeaderboardQuery, p *boardPage) boardRead {
	return boardRead{
		sql:  `SELECT ` + finalColumns + ` FROM tournament_results WHERE property = ? AND tournament = ? AND window_start = ? AND user_id = ?`,
		args: []any{q.Property, q.Tournament.ID, q.Window.Start.UTC(), q.User},
		scan: func(rs rowScanner) error {
			if !rs.Next() {
				return nil
			}
			r, _, _, err := scanFinal(rs)
			p.userRow = &r
			return err
		},
	}
}

// Leaderboard reads one page of q.Window's leaderboard in rank order and, when q.User is
// set, that user's row, with the window's record. A closed window's rows carry the prizes
// paid. A cursor Tally did not issue is rewards.ErrBadCursor.
func (db *DB) Leaderboard(ctx context.Context, q rewards.LeaderboardQuery) (rewards.Leaderboard, error) {
	cur, err := cursorOf(q)
	if err != nil {
		return rewards.Leaderboard{}, err
	}
	rec := noRecord(q.Property, q.Tournament.ID, q.Window.Start)
	var p boardPage
	guess := likelyBoard(q.Window, db.now())
	reads := append([]boardRead{windowRead(q.Property, q.Tournament.ID, q.Window.Start, &rec)}, pageReads(q, cur, guess, &p)...)
	if err := db.readBoard(ctx, reads...); err != nil {
		return rewards.Leaderboard{}, translate(err)
	}
	if b := boardOf(rec); b != guess {
		p = boardPage{}
		if err := db.readBoard(ctx, pageReads(q, cur, b, &p)...); err != nil {
			return rewards.Leaderboard{}, translate(err)
		}
	}
	return rewards.Leaderboard{Rows: p.rows, NextCursor: p.next, UserRow: p.userRow, Record: rec}, nil
}

// cursorWindow is the window whose board cur pages: one of t's schedule, or one with a
// record (begun, or closed, under another schedule), as GET …/leaderboard?window= takes.
func (db *DB) cursorWindow(ctx context.Context, q rewards.LeaderboardQuery, cur leaderboardCursor) (rewards.Window, error) {
	start := time.Unix(0, cur.window).UTC()
	if w, ok := q.Tournament.WindowStarting(start); ok {
		return w, nil
	}
	rec, err := db.TournamentWindow(ctx, q.Property, q.Tournament.ID, start)
	if err != nil {
		return rewards.Window{}, err
	}
	if !rec.Exists {
		return rewards.Window{}, fmt.Errorf("store: leaderboard cursor of a window that starts at %s, which %s has not: %w",
			start.Format(time.RFC3339Nano), q.Tournament.ID, rewards.ErrBadCursor)
	}
	return q.Tournament.Recorded(rewards.Window{Start: start}, rec), nil
}

// CurrentLeaderboard is Leaderboard of the window a publisher means by "current" at now
// (CurrentTournamentWindow), which it returns; q.Window is not read. A cursor pages the
// window it was issued for, current or not. ok is false when
// there is no current window. The window and the page of the schedule's current window
// are read in one round trip; a second one reads the page when the window that began
// earlier is the current one, or the board is not the likely one.
func (db *DB) CurrentLeaderboard(ctx context.Context, q rewards.LeaderboardQuery, now time.Time) (rewards.Leaderboard, rewards.Window, bool, error) {
	cur, err := cursorOf(q)
	if err != nil {
		return rewards.Leaderboard{}, rewards.Window{}, false, err
	}
	t := q.Tournament
	if cur.named {
		// A next page continues the board its cursor began, whichever window is
		// current now: a page of the next window would skip that window's leaders and
		// number its ranks on from the last one's.
		w, err := db.cursorWindow(ctx, q, cur)
		if err != nil {
			return rewards.Leaderboard{}, rewards.Window{}, false, err
		}
		q.Window = w
		lb, err := db.Leaderboard(ctx, q)
		return lb, w, err == nil, err
	}
	sched, ok := t.Current(now)
	var recs []rewards.WindowRecord
	var p boardPage
	reads := []boardRead{currentWindowsRead(q.Property, t, sched, ok, now, &recs)}
	guess := likelyBoard(sched, now)
	if ok {
		q.Window = sched
		reads = append(reads, pageReads(q, cur, guess, &p)...)
	}
	if err := db.readBoard(ctx, reads...); err != nil {
		return rewards.Leaderboard{}, rewards.Window{}, false, translate(err)
	}
	w, rec, found := currentOf(q.Property, t, sched, ok, recs, now)
	if !found {
		return rewards.Leaderboard{}, rewards.Window{}, false, nil
	}
	if b := boardOf(rec); !ok || !w.Start.Equal(sched.Start) || b != guess {
		q.Window, p = w, boardPage{}
		if err := db.readBoard(ctx, pageReads(q, cur, b, &p)...); err != nil {
			return rewards.Leaderboard{}, rewards.Window{}, false, translate(err)
		}
	}
	return rewards.Leaderboard{Rows: p.rows, NextCursor: p.next, UserRow: p.userRow, Record: rec}, w, true, nil
}
