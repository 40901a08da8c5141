package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"gorm.io/gorm"

	"tally/rewards"
)

// maxViolations bounds the report of CheckInvariants.
const maxViolations = 20

// CheckInvariants verifies, in one consistent snapshot, what the ledger promises for the
// wallets of property ("" for every property):
//
//   - every journal entry's legs sum to zero;
//   - each wallet bucket equals the sum of its user legs, so available + pending is
//     everything credited minus everything redeemed or debited;
//   - available + pending == lifetime_earned − redeemed, and redeemed is the sum of the
//     redemption and reversal legs;
//   - each reversal returns exactly its redemption's amount, to that redemption's user;
//   - pending − carry is the sum of the wallet's unsettled lots, and 0 <= carry < 1;
//   - no bucket is negative;
//   - each settlement run moved what its settlement legs say, credits a user at most
//     once, and counts at least the users those legs credit (a user whose matured lots
//     came to less than a unit moved nothing and has no leg) and at least one lot per
//     user. Settled lots are deleted, so a run's lot count is its own record.
//
// Sums are taken in Go with exact decimals (SQLite would sum TEXT as floats). It reads
// every entry, so it is for tests and for operators, not for a request path.
func (db *DB) CheckInvariants(ctx context.Context, property string) error {
	var problems []error
	fail := func(format string, args ...any) {
		if len(problems) < maxViolations {
			problems = append(problems, fmt.Errorf(format, args...))
		}
	}
	// One snapshot that holds no writer up: on SQLite a read-only transaction is a
	// deferred BEGIN (every other one takes the write lock at once).
	err := db.read(ctx, func(tx *gorm.DB) error {
		return checkLedger(tx, property, fail)
	})
	if err != nil {
		return translate(err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("store: invariants of %q violated: %w", property, errors.Join(problems...))
	}
	return nil
}

type userKey struct{ property, user string }

type walletSums struct {
	available, pending, redeemed decimal.Decimal
}

func checkLedger(tx *gorm.DB, property string, fail func(string, ...any)) error {
	one := func(col string) (string, []any) {
		if property == "" {
			return "TRUE", nil
		}
		return col + " = ?", []any{property}
	}
	// Journal entries balance.
	where, args := one("property")
	rows, err := tx.Raw(`SELECT journal_id, amount FROM entries WHERE `+where+` ORDER BY journal_id`, args...).Rows()
	if err != nil {
		return err
	}
	var jid, cur int64
	var amount decimal.Decimal
	sum := decimal.Zero
	flush := func() {
		if cur != 0 && !sum.IsZero() {
			fail("journal %d: legs sum to %s", cur, sum)
		}
	}
	for rows.Next() {
		if err := rows.Scan(&jid, &amount); err != nil {
			rows.Close()
			return err
		}
		if jid != cur {
			flush()
			cur, sum = jid, decimal.Zero
		}
		sum = sum.Add(amount)
	}
	flush()
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}

	// A wallet leg belongs to its journal row's wallet: a page of transactions finds its
	// journal rows by the user's own (Transactions), and would leave out a leg whose
	// journal row names another user.
	whereE, argsE := one("e.property")
	var strays []int64
	if err := tx.Raw(`SELECT e.id FROM entries e JOIN journal j ON j.id = e.journal_id
		WHERE e.account = '' AND (j.property <> e.property OR j.user_id <> e.user_id) AND `+whereE+` ORDER BY e.id LIMIT ?`,
		append(argsE, maxViolations)...).Scan(&strays).Error; err != nil {
		return err
	}
	for _, id := range strays {
		fail("entry %d: a wallet leg of another property or user than its journal row", id)
	}

	// Wallet legs per user and bucket.
	sums := map[userKey]*walletSums{}
	rows, err = tx.Raw(`SELECT property, user_id, bucket, kind, amount FROM entries WHERE account = '' AND `+where, args...).Rows()
	if err != nil {
		return err
	}
	var p, u, bucket, kind string
	for rows.Next() {
		if err := rows.Scan(&p, &u, &bucket, &kind, &amount); err != nil {
			rows.Close()
			return err
		}
		k := userKey{p, u}
		s := sums[k]
		if s == nil {
			s = &walletSums{decimal.Zero, decimal.Zero, decimal.Zero}
			sums[k] = s
		}
		switch bucket {
		case "available":
			s.available = s.available.Add(amount)
			// A reversal returns a redemption: redeemed is what was paid out and not returned.
			if kind == string(rewards.EntryRedemption) || kind == string(rewards.EntryReversal) {
				s.redeemed = s.redeemed.Sub(amount)
			}
		case "pending":
			s.pending = s.pending.Add(amount)
		default:
			fail("user %q: leg in unknown bucket %q", u, bucket)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}

	// Unsettled lots per wallet.
	lwhere, largs := one("w.property")
	lots := map[int64]decimal.Decimal{}
	rows, err = tx.Raw(`SELECT l.wallet_id, l.amount FROM lots l JOIN wallets w ON w.id = l.wallet_id
		WHERE l.settlement_id IS NULL AND `+lwhere, largs...).Rows()
	if err != nil {
		return err
	}
	var wid int64
	for rows.Next() {
		if err := rows.Scan(&wid, &amount); err != nil {
			rows.Close()
			return err
		}
		lots[wid] = lots[wid].Add(amount)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}

	var wallets []wallet
	if err := tx.Raw(`SELECT `+walletColumns+` FROM wallets WHERE `+where, args...).Scan(&wallets).Error; err != nil {
		return err
	}
	unit := decimal.New(1, 0)
	for _, w := range wallets {
		k := userKey{w.Property, w.UserID}
		s := sums[k]
		if s == nil {
			s = &walletSums{decimal.Zero, decimal.Zero, decimal.Zero}
		}
		delete(sums, k)
		name := fmt.Sprintf("wallet %d (%s/%s)", w.ID, w.Property, w.UserID)
		if !w.Available.Equal(s.available) {
			fail("%s: available %s, its legs sum to %s", name, w.Available, s.available)
		}
		if !w.Pending.Equal(s.pending) {
			fail("%s: pending %s, its legs sum to %s", name, w.Pending, s.pending)
		}
		if !w.Redeemed.Equal(s.redeemed) {
			fail("%s: redeemed %s, its redemption legs sum to %s", name, w.Redeemed, s.redeemed)
		}
		if total := w.LifetimeEarned.Sub(w.Redeemed); !w.Available.Add(w.Pending).Equal(total) {
			fail("%s: available + pending = %s, lifetime_earned − redeemed = %s", name, w.Available.Add(w.Pending), total)
		}
		if unsettled := lots[w.ID]; !w.Pending.Sub(w.Carry).Equal(unsettled) {
			fail("%s: pending − carry = %s, unsettled lots sum to %s", name, w.Pending.Sub(w.Carry), unsettled)
		}
		if w.Available.IsNegative() || w.Pending.IsNegative() || w.Carry.IsNegative() || !w.Carry.LessThan(unit) || w.Redeemed.IsNegative() {
			fail("%s: available %s, pending %s, carry %s, redeemed %s out of range", name, w.Available, w.Pending, w.Carry, w.Redeemed)
		}
	}
	for k, s := range sums {
		fail("user %s/%s has legs (available %s, pending %s) but no wallet", k.property, k.user, s.available, s.pending)
	}
	if err := checkReversals(tx, property, fail); err != nil {
		return err
	}
	if err := checkPayoutRecords(tx, property, fail); err != nil {
		return err
	}
	if err := checkSessions(tx, property, fail); err != nil {
		return err
	}
	if err := checkDayTotals(tx, property, fail); err != nil {
		return err
	}
	if err := checkTrueUps(tx, property, fail); err != nil {
		return err
	}
	if err := checkReferences(tx, property, fail); err != nil {
		return err
	}
	if err := checkTournaments(tx, property, fail); err != nil {
		return err
	}
	return checkRuns(tx, property, fail)
}

// checkTournaments holds what the publisher API shows of closed windows to the ledger:
// each window's paid total is the sum of its prize rows and, for a window with a final
// board, of the prizes on the board; each prize row is one prize leg of its user, of the
// same amount under the same ref; and every prize leg has its prize row.
func checkTournaments(tx *gorm.DB, property string, fail func(string, ...any)) error {
	where, args := "", []any(nil)
	if property != "" {
		where, args = " AND w.property = ?", []any{property}
	}
	// A window is named by what the driver returns for its start, never parsed: the
	// same column read the same way in one transaction.
	type window struct{ property, tournament, start string }
	type prize struct{ property, user, ref string }
	type figures struct {
		paid, prizes, board decimal.Decimal
		final               bool
	}
	sameWindow := func(t string) string {
		return `w.property = ` + t + `.property AND w.tournament = ` + t + `.tournament AND w.window_start = ` + t + `.window_start`
	}
	windows := map[window]*figures{}
	prizes := map[prize]decimal.Decimal{}
	err := eachRow(tx, `SELECT w.property, w.tournament, w.window_start, w.paid, w.final_board, p.user_id, p.ref, p.amount
		FROM tournament_windows w LEFT JOIN tournament_prizes p ON `+sameWindow("p")+` WHERE w.closed_at IS NOT NULL`+where, args,
		func(rs *sql.Rows) error {
			var w window
			var start any
			var paid, amount decimal.NullDecimal
			var final bool
			var user, ref sql.NullString
			if err := rs.Scan(&w.property, &w.tournament, &start, &paid, &final, &user, &ref, &amount); err != nil {
				return err
			}
			w.start = fmt.Sprint(start)
			f := windows[w]
			if f == nil {
				f = &figures{paid: paid.Decimal, final: final}
				windows[w] = f
			}
			if user.Valid {
				f.prizes = f.prizes.Add(amount.Decimal)
				prizes[prize{w.property, user.String, ref.String}] = amount.Decimal
			}
			return nil
		})
	if err != nil {
		return err
	}
	err = eachRow(tx, `SELECT w.property, w.tournament, w.window_start, r.prize FROM tournament_windows w
		JOIN tournament_results r ON `+sameWindow("r")+` WHERE w.closed_at IS NOT NULL AND r.prize IS NOT NULL`+where, args,
		func(rs *sql.Rows) error {
			var w window
			var start any
			var amount decimal.Decimal
			if err := rs.Scan(&w.property, &w.tournament, &start, &amount); err != nil {
				return err
			}
			w.start = fmt.Sprint(start)
			if f := windows[w]; f != nil {
				f.board = f.board.Add(amount)
			}
			return nil
		})
	if err != nil {
		return err
	}
	for w, f := range windows {
		if !f.prizes.Equal(f.paid) || (f.final && !f.board.Equal(f.paid)) {
			fail("tournament %s/%s window %s: paid %s, its prize rows sum to %s, the prizes on its final board to %s",
				w.property, w.tournament, w.start, f.paid, f.prizes, f.board)
		}
	}
	// Prize rows of a window that is not closed (or has no row) were paid by nothing
	// the API shows.
	err = eachRow(tx, `SELECT p.property, p.user_id, p.ref, p.amount FROM tournament_prizes p LEFT JOIN tournament_windows w ON `+
		sameWindow("p")+` WHERE w.closed_at IS NULL`+strings.ReplaceAll(where, "w.property", "p.property"), args,
		func(rs *sql.Rows) error {
			var k prize
			var amount decimal.Decimal
			if err := rs.Scan(&k.property, &k.user, &k.ref, &amount); err != nil {
				return err
			}
			fail("prize %s of %s/%s: its window is not closed", k.ref, k.property, k.user)
			prizes[k] = amount
			return nil
		})
	if err != nil {
		return err
	}
	legs := map[prize][]decimal.Decimal{}
	err = eachRow(tx, `SELECT j.property, j.user_id, j.ref, e.amount FROM entries e JOIN journal j ON j.id = e.journal_id
		WHERE e.kind = 'prize' AND e.account = ''`+strings.ReplaceAll(where, "w.property", "e.property"), args,
		func(rs *sql.Rows) error {
			var k prize
			var amount decimal.Decimal
			if err := rs.Scan(&k.property, &k.user, &k.ref, &amount); err != nil {
				return err
			}
			legs[k] = append(legs[k], amount)
			return nil
		})
	if err != nil {
		return err
	}
	for k, amount := range prizes {
		if got := legs[k]; len(got) != 1 || !got[0].Equal(amount) {
			fail("prize %s of %s/%s: %s recorded, prize legs %v in the ledger", k.ref, k.property, k.user, amount, got)
		}
		delete(legs, k)
	}
	for k, got := range legs {
		fail("prize legs %v of %s/%s under %s have no prize row", got, k.property, k.user, k.ref)
	}
	return nil
}

// eachRow runs q and calls scan on each row.
func eachRow(tx *gorm.DB, q string, args []any, scan func(*sql.Rows) error) error {
	rows, err := tx.Raw(q, args...).Rows()
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// checkReferences finds rows that point at nothing, which the foreign keys dropped from
// the hot path on Postgres (migration 00004) no longer refuse: an entry without its
// journal row (in the balance, not in the transactions page), a claim without its
// journal row (a reward blocked that nothing paid), a lot without its credit or wallet,
// or of another property than its wallet.
func checkReferences(tx *gorm.DB, property string, fail func(string, ...any)) error {
	for _, c := range []struct{ what, q, col string }{
		{"entry %d: its journal row is missing", `SELECT e.id FROM entries e LEFT JOIN journal j ON j.id = e.journal_id
			WHERE j.id IS NULL`, "e.property"},
		{"claim of journal %d: its journal row is missing", `SELECT c.journal_id FROM claims c LEFT JOIN journal j ON j.id = c.journal_id
			WHERE j.id IS NULL`, "c.property"},
		// A reward paid without its claim (deleted) would be paid again by the next event.
		// An anti-join, not NOT EXISTS: claims has no index on journal_id, and SQLite ran
		// NOT EXISTS as a scan of claims per reward (quadratic); for a join it builds one.
		{"journal %d (a target or achievement paid): its claim is missing", `SELECT j.id FROM journal j
			LEFT JOIN claims c ON c.journal_id = j.id WHERE j.kind IN ('target', 'achievement') AND c.journal_id IS NULL`, "j.property"},
		{"lot %d: its credit's journal row or its wallet is missing", `SELECT l.id FROM lots l LEFT JOIN journal j ON j.id = l.journal_id
			LEFT JOIN wallets w ON w.id = l.wallet_id WHERE (j.id IS NULL OR w.id IS NULL)`, "coalesce(w.property, j.property, '')"},
		// Settlement finds a wallet's lots by the lot's property (00032): a lot of another
		// property than its wallet would never settle.
		{"lot %d: its property is not its wallet's", `SELECT l.id FROM lots l JOIN wallets w ON w.id = l.wallet_id
			WHERE l.property <> w.property`, "w.property"},
	} {
		q, args := c.q, []any(nil)
		if property != "" {
			q += ` AND ` + c.col + ` = ?`
			args = append(args, property)
		}
		var ids []int64
		if err := tx.Raw(q+` LIMIT ?`, append(args, maxViolations)...).Scan(&ids).Error; err != nil {
			return err
		}
		for _, id := range ids {
			fail(c.what, id)
		}
	}
	return nil
}

// checkReversals holds each reversal against its redemption: same property, user and
// amount. Its one leg returning exactly that amount is checkPayoutRecords'.
func checkReversals(tx *gorm.DB, property string, fail func(string, ...any)) error {
	q := `SELECT v.id, v.property, v.user_id, v.amount, d.property, d.user_id, d.amount
		FROM reversals v LEFT JOIN redemptions d ON d.id = v.redemption_id`
	var args []any
	if property != "" {
		q += ` WHERE v.property = ?`
		args = append(args, property)
	}
	rows, err := tx.Raw(q, args...).Rows()
	if err != nil {
		return err
	}
	type rev struct {
		id             int64
		property, user string
		amount         decimal.Decimal
		rProp, rUser   sql.NullString
		rAmount        decimal.NullDecimal
	}
	var revs []rev
	for rows.Next() {
		var r rev
		if err := rows.Scan(&r.id, &r.property, &r.user, &r.amount, &r.rProp, &r.rUser, &r.rAmount); err != nil {
			rows.Close()
			return err
		}
		revs = append(revs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, r := range revs {
		if !r.rAmount.Valid || r.rProp.String != r.property || r.rUser.String != r.user || !r.rAmount.Decimal.Equal(r.amount) {
			fail("reversal %d (%s/%s, %s) does not match its redemption (%s/%s, %v)", r.id, r.property, r.user, r.amount,
				r.rProp.String, r.rUser.String, r.rAmount.Decimal)
		}
	}
	return nil
}

// checkPayoutRecords holds finance's records of money paid out, put in and given back
// to their legs, one by one: each redemption, adjustment and reversal row has exactly one
// leg of its kind on its user's wallet, under its ref, in its bucket and for its amount
// (a redemption's taken out of available, a reversal's returned to it, an adjustment's
// signed), and every such leg has its row. A row changed or removed after its posting
// (what the API lists and a reversal reads) was otherwise seen only in totals, or not at
// all.
func checkPayoutRecords(tx *gorm.DB, property string, fail func(string, ...any)) error {
	type want struct {
		what, user string
		bucket     rewards.Bucket
		amount     decimal.Decimal
		seen       bool
	}
	for _, c := range []struct {
		kind   rewards.EntryKind
		q      string // id (for messages), ref, property, user, amount, bucket
		negate bool
	}{
		{rewards.EntryRedemption, `SELECT id, 'redemption:' || id, property, user_id, amount, 'available' FROM redemptions`, true},
		{rewards.EntryReversal, `SELECT id, 'redemption:' || redemption_id, property, user_id, amount, 'available' FROM reversals`, false},
		{rewards.EntryAdjustment, `SELECT id, 'adjustment:' || id, property, user_id, amount, bucket FROM adjustments`, false},
	} {
		q, args := c.q, []any(nil)
		if property != "" {
			q += ` WHERE property = ?`
			args = append(args, property)
		}
		wants := map[[2]string]*want{} // by property and ref
		err := eachRow(tx, q, args, func(rows *sql.Rows) error {
			var (
				id                      int64
				ref, prop, user, bucket string
				amount                  decimal.Decimal
			)
			if err := rows.Scan(&id, &ref, &prop, &user, &amount, &bucket); err != nil {
				return err
			}
			if c.negate {
				amount = amount.Neg()
			}
			k := [2]string{prop, ref}
			if w, dup := wants[k]; dup {
				fail("%s %d and %s are both under %s/%s", c.kind, id, w.what, prop, ref)
			}
			wants[k] = &want{what: fmt.Sprintf("%s %d", c.kind, id), user: user, bucket: rewards.Bucket(bucket), amount: amount}
			return nil
		})
		if err != nil {
			return err
		}
		lq, largs := `SELECT j.ref, e.property, e.user_id, e.bucket, e.amount FROM entries e JOIN journal j ON j.id = e.journal_id
			WHERE e.account = '' AND e.kind = ?`, []any{string(c.kind)}
		if property != "" {
			lq += ` AND e.property = ?`
			largs = append(largs, property)
		}
		err = eachRow(tx, lq, largs, func(rows *sql.Rows) error {
			var (
				ref, prop, user, bucket string
				amount                  decimal.Decimal
			)
			if err := rows.Scan(&ref, &prop, &user, &bucket, &amount); err != nil {
				return err
			}
			w := wants[[2]string{prop, ref}]
			switch {
			case w == nil:
				fail("%s leg of %s/%s under %s (%s %s) has no %s row", c.kind, prop, user, ref, bucket, amount, c.kind)
			case w.seen:
				fail("%s has more than one leg under %s/%s", w.what, prop, ref)
			case w.user != user || w.bucket != rewards.Bucket(bucket) || !w.amount.Equal(amount):
				w.seen = true
				fail("%s (%s/%s, %s %s) does not match its leg under %s (%s/%s, %s %s)", w.what, prop, w.user, w.bucket, w.amount,
					ref, prop, user, bucket, amount)
			default:
				w.seen = true
			}
			return nil
		})
		if err != nil {
			return err
		}
		for k, w := range wants {
			if !w.seen {
				fail("%s (%s/%s, %s) has no leg under %s", w.what, k[0], w.user, w.amount, k[1])
			}
		}
	}
	return nil
}

// checkSessions holds each session record, which true-ups release against, to its
// revenue legs: gross = credited + withheld + capped excess, its user's legs sum to
// credited and its @buffer legs to withheld, and every revenue posting of an event has
// its session. A raised withheld passed before, and the next true-up released it.
func checkSessions(tx *gorm.DB, property string, fail func(string, ...any)) error {
	type figures struct {
		property, user             string
		credited, withheld         decimal.Decimal
		legsCredited, legsWithheld decimal.Decimal
		session                    bool
	}
	by := map[int64]*figures{}
	q, args := `SELECT inbox_id, property, user_id, gross, credited, withheld, capped_excess FROM sessions`, []any(nil)
	if property != "" {
		q += ` WHERE property = ?`
		args = append(args, property)
	}
	err := eachRow(tx, q, args, func(rows *sql.Rows) error {
		var (
			id                                int64
			prop, user                        string
			gross, credited, withheld, capped decimal.Decimal
		)
		if err := rows.Scan(&id, &prop, &user, &gross, &credited, &withheld, &capped); err != nil {
			return err
		}
		if sum := credited.Add(withheld).Add(capped); !gross.Equal(sum) {
			fail("session of event %d (%s/%s): gross %s, credited + withheld + capped excess = %s", id, prop, user, gross, sum)
		}
		by[id] = &figures{property: prop, user: user, credited: credited, withheld: withheld,
			legsCredited: decimal.Zero, legsWithheld: decimal.Zero, session: true}
		return nil
	})
	if err != nil {
		return err
	}
	lq, largs := `SELECT j.inbox_id, e.property, e.user_id, e.account, e.amount FROM entries e JOIN journal j ON j.id = e.journal_id
		WHERE e.kind = ? AND j.inbox_id IS NOT NULL`, []any{string(rewards.EntryRevenue)}
	if property != "" {
		lq += ` AND e.property = ?`
		largs = append(largs, property)
	}
	err = eachRow(tx, lq, largs, func(rows *sql.Rows) error {
		var (
			id                  int64
			prop, user, account string
			amount              decimal.Decimal
		)
		if err := rows.Scan(&id, &prop, &user, &account, &amount); err != nil {
			return err
		}
		f := by[id]
		if f == nil {
			f = &figures{property: prop, user: user, legsCredited: decimal.Zero, legsWithheld: decimal.Zero}
			by[id] = f
		}
		switch account {
		case "":
			f.legsCredited = f.legsCredited.Add(amount)
		case rewards.AccountBuffer:
			f.legsWithheld = f.legsWithheld.Add(amount)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for id, f := range by {
		switch {
		case !f.session:
			fail("event %d (%s/%s) has revenue legs (credited %s, withheld %s) but no session record", id, f.property, f.user,
				f.legsCredited, f.legsWithheld)
		case !f.credited.Equal(f.legsCredited) || !f.withheld.Equal(f.legsWithheld):
			fail("session of event %d (%s/%s): credited %s, withheld %s; its revenue legs credit %s and withhold %s", id, f.property,
				f.user, f.credited, f.withheld, f.legsCredited, f.legsWithheld)
		}
	}
	return nil
}

// checkDayTotals holds the revenue credited per user and UTC day of receipt, which the
// per_user_per_day cap reads, to the sessions credited: a lowered total lifted the cap
// for that day, and verify passed it.
func checkDayTotals(tx *gorm.DB, property string, fail func(string, ...any)) error {
	type key struct{ property, user, day string }
	type totals struct{ recorded, credited decimal.Decimal }
	by := map[key]*totals{}
	get := func(k key) *totals {
		t := by[k]
		if t == nil {
			t = &totals{recorded: decimal.Zero, credited: decimal.Zero}
			by[k] = t
		}
		return t
	}
	q, args := `SELECT w.property, w.user_id, d.day, d.revenue_credited FROM user_days d JOIN wallets w ON w.id = d.wallet_id`, []any(nil)
	if property != "" {
		q += ` WHERE w.property = ?`
		args = append(args, property)
	}
	err := eachRow(tx, q, args, func(rows *sql.Rows) error {
		var (
			k      key
			amount decimal.Decimal
		)
		if err := rows.Scan(&k.property, &k.user, &k.day, &amount); err != nil {
			return err
		}
		get(k).recorded = amount
		return nil
	})
	if err != nil {
		return err
	}
	q, args = `SELECT property, user_id, received_at, credited FROM sessions`, nil
	if property != "" {
		q += ` WHERE property = ?`
		args = append(args, property)
	}
	err = eachRow(tx, q, args, func(rows *sql.Rows) error {
		var (
			prop, user string
			at         time.Time
			credited   decimal.Decimal
		)
		if err := rows.Scan(&prop, &user, &at, &credited); err != nil {
			return err
		}
		if credited.IsZero() {
			return nil
		}
		t := get(key{prop, user, rewards.DayOf(at)})
		t.credited = t.credited.Add(credited)
		return nil
	})
	if err != nil {
		return err
	}
	for k, t := range by {
		if !t.recorded.Equal(t.credited) {
			fail("%s/%s on %s: the day's revenue total (for per_user_per_day) is %s, its sessions credited %s", k.property, k.user, k.day,
				t.recorded, t.credited)
		}
	}
	return nil
}

// checkRuns compares each run's counters with the settlement legs it posted.
func checkRuns(tx *gorm.DB, property string, fail func(string, ...any)) error {
	var runs []runRow
	q := `SELECT id, property, status, users, entries, amount FROM settlements`
	var args []any
	if property != "" {
		q += ` WHERE property = ?`
		args = append(args, property)
	}
	if err := tx.Raw(q, args...).Scan(&runs).Error; err != nil {
		return err
	}
	// Every settlement leg at once, by run: a query per run scanned the ledger once per
	// run (70 ms each on 400,000 entries), and a property settles every minute.
	type leg struct {
		Ref    string
		UserID string
		Amount decimal.Decimal
	}
	var all []leg
	lq := `SELECT j.ref, e.user_id, e.amount FROM entries e JOIN journal j ON j.id = e.journal_id
		WHERE j.kind = 'settlement' AND e.bucket = 'available'`
	if property != "" {
		lq += ` AND e.property = ?`
	}
	if err := tx.Raw(lq, args...).Scan(&all).Error; err != nil {
		return err
	}
	byRun := map[string][]leg{}
	for _, l := range all {
		byRun[l.Ref] = append(byRun[l.Ref], l)
	}
	for _, r := range runs {
		ref := fmt.Sprintf("settlement:%d", r.ID)
		legs := byRun[ref]
		delete(byRun, ref)
		moved, users := decimal.Zero, map[string]bool{}
		for _, l := range legs {
			moved = moved.Add(l.Amount)
			if users[l.UserID] {
				fail("settlement %d (%s): %s settled twice in one run", r.ID, r.Status, l.UserID)
			}
			users[l.UserID] = true
		}
		if !moved.Equal(r.Amount) || int64(len(users)) > r.Users || r.Entries < r.Users {
			fail("settlement %d (%s): counts %d users, %d lots, %s moved; its legs credit %d users with %s",
				r.ID, r.Status, r.Users, r.Entries, r.Amount, len(users), moved)
		}
	}
	for _, ref := range slices.Sorted(maps.Keys(byRun)) {
		fail("%s: %d settlement legs of a run that is not recorded", ref, len(byRun[ref]))
	}
	return nil
}

// checkTrueUps holds each true-up run to its days and to its release legs, and each
// day's release to what its sessions withheld: a run's released and shortfall are its
// days' sums, the buffer_release legs under its ref add up to its released, and no day
// releases more than the sessions received on it withheld. (Totals alone let a release
// move between two runs or two days unseen.)
func checkTrueUps(tx *gorm.DB, property string, fail func(string, ...any)) error {
	where, args := "", []any(nil)
	if property != "" {
		where, args = " WHERE property = ?", []any{property}
	}
	type sums struct{ released, shortfall, legs decimal.Decimal }
	runs := map[int64]*sums{}
	byRun := map[int64]*sums{} // what its days and legs say
	get := func(m map[int64]*sums, id int64) *sums {
		s := m[id]
		if s == nil {
			s = &sums{released: decimal.Zero, shortfall: decimal.Zero, legs: decimal.Zero}
			m[id] = s
		}
		return s
	}
	err := eachRow(tx, `SELECT id, released, shortfall FROM trueups`+where, args, func(rows *sql.Rows) error {
		var id int64
		var released, shortfall decimal.Decimal
		if err := rows.Scan(&id, &released, &shortfall); err != nil {
			return err
		}
		r := get(runs, id)
		r.released, r.shortfall = released, shortfall
		return nil
	})
	if err != nil {
		return err
	}
	type dayKey struct{ property, day string }
	days := map[dayKey]decimal.Decimal{}
	err = eachRow(tx, `SELECT property, day, trueup_id, released, shortfall FROM trueup_days`+where, args, func(rows *sql.Rows) error {
		var k dayKey
		var id int64
		var released, shortfall decimal.Decimal
		if err := rows.Scan(&k.property, &k.day, &id, &released, &shortfall); err != nil {
			return err
		}
		days[k] = released
		b := get(byRun, id)
		b.released, b.shortfall = b.released.Add(released), b.shortfall.Add(shortfall)
		return nil
	})
	if err != nil {
		return err
	}
	legsWhere := ""
	if property != "" {
		legsWhere = " AND e.property = ?"
	}
	err = eachRow(tx, `SELECT j.ref, e.amount FROM entries e JOIN journal j ON j.id = e.journal_id
		WHERE e.kind = 'buffer_release' AND e.account = ''`+legsWhere, args, func(rows *sql.Rows) error {
		var ref string
		var amount decimal.Decimal
		if err := rows.Scan(&ref, &amount); err != nil {
			return err
		}
		id, err := strconv.ParseInt(strings.TrimPrefix(ref, "trueup:"), 10, 64)
		if err != nil || !strings.HasPrefix(ref, "trueup:") {
			fail("a buffer_release leg of %s under ref %q, which names no true-up run", amount, ref)
			return nil
		}
		b := get(byRun, id)
		b.legs = b.legs.Add(amount)
		return nil
	})
	if err != nil {
		return err
	}
	for id, b := range byRun {
		if runs[id] == nil {
			fail("true-up run %d is missing: its days or legs released %s", id, b.released.Add(b.legs))
		}
	}
	withheld, total := map[dayKey]decimal.Decimal{}, decimal.Zero
	err = eachRow(tx, `SELECT property, received_at, withheld FROM sessions`+where, args, func(rows *sql.Rows) error {
		var prop string
		var at time.Time
		var w decimal.Decimal
		if err := rows.Scan(&prop, &at, &w); err != nil {
			return err
		}
		if w.IsZero() {
			return nil
		}
		k := dayKey{prop, rewards.DayOf(at)}
		withheld[k], total = withheld[k].Add(w), total.Add(w)
		return nil
	})
	if err != nil {
		return err
	}
	released := decimal.Zero
	for id, r := range runs {
		b := get(byRun, id)
		released = released.Add(r.released)
		if !r.released.Equal(b.released) || !r.shortfall.Equal(b.shortfall) {
			fail("true-up run %d released %s with a shortfall of %s, its days %s and %s", id, r.released, r.shortfall, b.released, b.shortfall)
		}
		if !r.released.Equal(b.legs) {
			fail("true-up run %d released %s, its buffer_release legs %s", id, r.released, b.legs)
		}
	}
	for k, rel := range days {
		if rel.GreaterThan(withheld[k]) {
			fail("true-up day %s of %s released %s, more than its sessions withheld (%s)", k.day, k.property, rel, withheld[k])
		}
	}
	if released.GreaterThan(total) {
		fail("true-ups released %s, more than the sessions withheld (%s)", released, total)
	}
	return nil
}
