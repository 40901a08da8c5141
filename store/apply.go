package store

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"gorm.io/gorm"

	"tally/rewards"
)

// applyItem is a recorded event whose rules are to be applied in the current transaction.
type applyItem struct {
	inboxID    int64
	property   string
	event      rewards.Event
	rules      rewards.Rules
	receivedAt time.Time // day buckets and holds count from receipt
	result     *rewards.Receipt
}

type walletKey struct{ property, user string }

// wallet is a locked wallet row, modified in memory and written back once.
type wallet struct {
	ID             int64
	Property       string
	UserID         string
	Pending        decimal.Decimal
	Available      decimal.Decimal
	Carry          decimal.Decimal
	Redeemed       decimal.Decimal
	LifetimeEarned decimal.Decimal
	UpdatedAt      time.Time
	dirty          bool
}

// apply evaluates each item's rules and posts the resulting entries. Wallets are locked
// up front, in one fixed order, so concurrent batches cannot deadlock and a user's day
// cap and claims are read and written by one transaction at a time.
func (db *DB) apply(tx *gorm.DB, items []applyItem, now time.Time) error {
	if len(items) == 0 {
		return nil
	}
	// Revenue needs the user's day state, so it is evaluated under the wallet lock; other
	// events need no state and are evaluated first to learn whether they touch a wallet.
	outcomes := make([]*rewards.Outcome, len(items))
	var keys []walletKey
	for i, it := range items {
		if it.event.User == "" || it.event.Kind == rewards.KindOther {
			it.result.Reason = "no reward rule for event type " + it.event.Type
			continue
		}
		if it.event.Kind == rewards.KindSession {
			if it.rules.Revenue == nil {
				// Same answer Evaluate would give, without locking a wallet for it.
				continue
			}
			keys = append(keys, walletKey{it.property, it.event.User})
			continue
		}
		out, err := rewards.Evaluate(it.event, it.rules, rewards.DayState{RevenueCredited: decimal.Zero}, it.receivedAt)
		if err != nil {
			continue // evaluated again below, where the error quarantines the event
		}
		outcomes[i] = &out
		if len(out.Entries) > 0 {
			keys = append(keys, walletKey{it.property, it.event.User})
		}
	}
	wallets, err := lockWallets(tx, keys, now)
	if err != nil {
		return err
	}
	days := map[dayKey]decimal.Decimal{}
	for i, it := range items {
		if it.event.User == "" || it.event.Kind == rewards.KindOther {
			continue
		}
		out := outcomes[i]
		w := wallets[walletKey{it.property, it.event.User}]
		day := dayKey{}
		if out == nil {
			state := rewards.DayState{RevenueCredited: decimal.Zero}
			if w != nil && it.event.Kind == rewards.KindSession {
				day = dayKey{w.ID, rewards.DayOf(it.receivedAt)}
				if state.RevenueCredited, err = dayCredited(tx, days, day); err != nil {
					return err
				}
			}
			o, err := rewards.Evaluate(it.event, it.rules, state, it.receivedAt)
			if err != nil {
				reason := "rules: " + err.Error()
				if err := setQuarantined(tx, it.inboxID, reason); err != nil {
					return err
				}
				it.result.Status, it.result.Reason = rewards.StatusQuarantined, reason
				continue
			}
			out = &o
		}
		it.result.Reason = out.Note
		var credited decimal.Decimal
		for _, e := range out.Entries {
			if w == nil {
				return fmt.Errorf("store: entry for user %q without a locked wallet", it.event.User)
			}
			posted, err := db.post(tx, w, e, posting{inboxID: &it.inboxID, ref: fmt.Sprintf("event:%d", it.inboxID), now: now})
			if err != nil {
				return err
			}
			if posted && e.Kind == rewards.EntryRevenue {
				credited = credited.Add(e.UserDelta(rewards.Pending))
			}
		}
		if out.Session != nil {
			if err := insertSession(tx, it, *out.Session); err != nil {
				return err
			}
			if day.wallet != 0 && credited.IsPositive() {
				days[day] = days[day].Add(credited)
				if err := saveDay(tx, day, days[day]); err != nil {
					return err
				}
			}
		}
	}
	return saveWallets(tx, wallets, now)
}

// lockWallets creates missing wallets and locks all of them, in (property, user) order,
// with one upsert that also returns their current balances. On Postgres the no-op
// DO UPDATE takes each row lock in the order of the VALUES list; on SQLite the immediate
// transaction already holds the database's write lock.
func lockWallets(tx *gorm.DB, keys []walletKey, now time.Time) (map[walletKey]*wallet, error) {
	out := make(map[walletKey]*wallet, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].property != keys[j].property {
			return keys[i].property < keys[j].property
		}
		return keys[i].user < keys[j].user
	})
	uniq := keys[:0:0]
	for i, k := range keys {
		if i == 0 || k != keys[i-1] {
			uniq = append(uniq, k)
		}
	}
	var sb strings.Builder
	args := make([]any, 0, len(uniq)*4)
	sb.WriteString(`INSERT INTO wallets (property, user_id, created_at, updated_at) VALUES `)
	for i, k := range uniq {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString("(?, ?, ?, ?)")
		args = append(args, k.property, k.user, now, now)
	}
	sb.WriteString(` ON CONFLICT (property, user_id) DO UPDATE SET updated_at = wallets.updated_at
		RETURNING id, property, user_id, pending, available, carry, redeemed, lifetime_earned, updated_at`)
	var rows []wallet
	if err := tx.Raw(sb.String(), args...).Scan(&rows).Error; err != nil {
		return nil, err
	}
	for i := range rows {
		w := rows[i]
		out[walletKey{w.Property, w.UserID}] = &w
	}
	if len(out) != len(uniq) {
		return nil, fmt.Errorf("store: locked %d wallets, wanted %d", len(out), len(uniq))
	}
	return out, nil
}

// saveWallets writes back every wallet changed in this transaction, stamping each for
// the balance feed (feed.go).
func saveWallets(tx *gorm.DB, wallets map[walletKey]*wallet, now time.Time) error {
	var stamp string
	var stampArgs []any
	for _, w := range wallets {
		if !w.dirty {
			continue
		}
		for _, v := range []decimal.Decimal{w.Pending, w.Available, w.Carry} {
			if v.IsNegative() {
				return fmt.Errorf("store: wallet %d would go negative: %w", w.ID, rewards.ErrInsufficientFunds)
			}
		}
		if stamp == "" {
			var err error
			if stamp, stampArgs, err = feedStamp(tx); err != nil {
				return err
			}
		}
		args := append([]any{w.Pending.String(), w.Available.String(), w.Carry.String(), w.Redeemed.String(), w.LifetimeEarned.String(), now},
			stampArgs...)
		err := tx.Exec(`UPDATE wallets SET pending = ?, available = ?, carry = ?, redeemed = ?, lifetime_earned = ?, updated_at = ?, feed_seq = `+
			stamp+` WHERE id = ?`, append(args, w.ID)...).Error
		if err != nil {
			return err
		}
		w.UpdatedAt, w.dirty = now, false
	}
	return nil
}

type dayKey struct {
	wallet int64
	day    string
}

func dayCredited(tx *gorm.DB, cache map[dayKey]decimal.Decimal, k dayKey) (decimal.Decimal, error) {
	if v, ok := cache[k]; ok {
		return v, nil
	}
	var vals []decimal.Decimal
	err := tx.Raw(`SELECT revenue_credited FROM user_days WHERE wallet_id = ? AND day = ?`, k.wallet, k.day).Scan(&vals).Error
	if err != nil {
		return decimal.Zero, err
	}
	v := decimal.Zero
	if len(vals) > 0 {
		v = vals[0]
	}
	cache[k] = v
	return v, nil
}

func saveDay(tx *gorm.DB, k dayKey, v decimal.Decimal) error {
	return tx.Exec(`INSERT INTO user_days (wallet_id, day, revenue_credited) VALUES (?, ?, ?)
		ON CONFLICT (wallet_id, day) DO UPDATE SET revenue_credited = excluded.revenue_credited`, k.wallet, k.day, v.String()).Error
}

func insertSession(tx *gorm.DB, it applyItem, r rewards.SessionResult) error {
	s := it.event.Session
	if s == nil {
		return errors.New("store: session result for an event without a session")
	}
	return tx.Exec(`INSERT INTO sessions (inbox_id, property, user_id, session_id, country, duration_seconds, revenue_usd,
		gross, withheld, credited, capped_excess, reason, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		it.inboxID, it.property, it.event.User, s.SessionID, s.Country, s.DurationSeconds, s.RevenueUSD.String(),
		r.Gross.String(), r.Withheld.String(), r.Credited.String(), r.CappedExcess.String(), r.Reason, it.receivedAt).Error
}

// posting is where an entry comes from.
type posting struct {
	inboxID *int64
	ref     string
	now     time.Time
}

// post appends one balanced entry for wallet w: the journal row, its legs, the pending
// lot it creates, and the claim that makes it payable once. It reports false, posting
// nothing, when the entry's claim was taken already. The wallet is updated in memory.
func (db *DB) post(tx *gorm.DB, w *wallet, e rewards.Entry, p posting) (bool, error) {
	if !e.Balanced() {
		return false, fmt.Errorf("store: unbalanced %s entry for %q", e.Kind, w.UserID)
	}
	for _, l := range e.Legs {
		if err := rewards.CheckAmount(l.Amount); err != nil {
			return false, fmt.Errorf("store: %s leg: %w", e.Kind, err)
		}
	}
	if e.Claim != "" {
		var n int64
		if err := tx.Raw(`SELECT count(*) FROM claims WHERE property = ? AND user_id = ? AND claim = ?`, w.Property, w.UserID, e.Claim).Scan(&n).Error; err != nil {
			return false, err
		}
		if n > 0 {
			return false, nil
		}
	}
	var maturesAt *time.Time
	if !e.MaturesAt.IsZero() {
		t := e.MaturesAt.UTC().Truncate(time.Microsecond)
		maturesAt = &t
	}
	var jid int64
	err := tx.Raw(`INSERT INTO journal (property, user_id, kind, rule, rule_version, inbox_id, ref, matures_at, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		w.Property, w.UserID, string(e.Kind), e.Rule, e.RuleVersion, p.inboxID, p.ref, maturesAt, p.now).Scan(&jid).Error
	if err != nil {
		return false, err
	}
	var sb strings.Builder
	args := make([]any, 0, len(e.Legs)*8)
	sb.WriteString(`INSERT INTO entries (journal_id, property, user_id, account, bucket, kind, amount, created_at) VALUES `)
	for i, l := range e.Legs {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString("(?, ?, ?, ?, ?, ?, ?, ?)")
		args = append(args, jid, w.Property, w.UserID, l.System, string(l.Bucket), string(e.Kind), l.Amount.String(), p.now)
	}
	if err := tx.Exec(sb.String(), args...).Error; err != nil {
		return false, err
	}
	if e.Claim != "" {
		// The primary key is the guarantee: a second claim fails the transaction.
		if err := tx.Exec(`INSERT INTO claims (property, user_id, claim, journal_id, created_at) VALUES (?, ?, ?, ?, ?)`,
			w.Property, w.UserID, e.Claim, jid, p.now).Error; err != nil {
			return false, err
		}
	}
	dPending, dAvailable := e.UserDelta(rewards.Pending), e.UserDelta(rewards.Available)
	// A pending adjustment is a lot too (negative for a debit), so pending − carry stays
	// the sum of unsettled lots and settlement nets it.
	if (isCredit(e.Kind) && dPending.IsPositive()) || (e.Kind == rewards.EntryAdjustment && !dPending.IsZero()) {
		if maturesAt == nil {
			maturesAt = &p.now
		}
		if err := tx.Exec(`INSERT INTO lots (wallet_id, journal_id, amount, matures_at) VALUES (?, ?, ?, ?)`,
			w.ID, jid, dPending.String(), *maturesAt).Error; err != nil {
			return false, err
		}
	}
	switch {
	case isCredit(e.Kind) && dPending.IsPositive():
		w.LifetimeEarned = w.LifetimeEarned.Add(dPending)
	case e.Kind == rewards.EntryAdjustment:
		// Adjustments count, signed, so available + pending == lifetime_earned − redeemed.
		w.LifetimeEarned = w.LifetimeEarned.Add(dPending).Add(dAvailable)
	}
	w.Pending = w.Pending.Add(dPending)
	w.Available = w.Available.Add(dAvailable)
	if e.Kind == rewards.EntryRedemption {
		w.Redeemed = w.Redeemed.Sub(dAvailable)
	}
	w.dirty = true
	return true, nil
}

// isCredit reports the kinds that credit pending from a rule.
func isCredit(k rewards.EntryKind) bool {
	return k == rewards.EntryRevenue || k == rewards.EntryTarget || k == rewards.EntryAchievement
}
