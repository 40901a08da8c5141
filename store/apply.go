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
// cap and claims are read and written by one transaction at a time. Everything is read
// and written with a few set-based statements per batch, not per event.
func (db *DB) apply(tx *gorm.DB, items []applyItem, now time.Time) error {
	if len(items) == 0 {
		return nil
	}
	// Revenue needs the user's day state, so it is evaluated under the wallet lock; other
	// events need no state and are evaluated first to learn whether they touch a wallet
	// and which claims they need.
	outcomes := make([]*rewards.Outcome, len(items))
	var keys []walletKey
	var claims []claimKey
	for i, it := range items {
		if it.event.User == "" || it.event.Kind == rewards.KindOther {
			it.result.Reason = "no reward rule for event type " + it.event.Type
			continue
		}
		if it.event.Kind == rewards.KindSession {
			if it.rules.Revenue != nil { // without it Evaluate quarantines; no wallet needed
				keys = append(keys, walletKey{it.property, it.event.User})
			}
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
		for _, e := range out.Entries {
			if e.Claim != "" {
				claims = append(claims, claimKey{it.property, it.event.User, e.Claim})
			}
		}
	}
	wallets, err := lockWallets(tx, keys, now)
	if err != nil {
		return err
	}
	l := db.newLedger(tx)
	if err := l.loadClaims(claims); err != nil {
		return err
	}
	days, err := loadDays(tx, items, wallets)
	if err != nil {
		return err
	}
	var sessions [][]any
	touchedDays := map[dayKey]bool{}
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
				state.RevenueCredited = days[day]
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
			posted, err := l.add(w, e, posting{inboxID: &it.inboxID, ref: fmt.Sprintf("event:%d", it.inboxID), now: now})
			if err != nil {
				return err
			}
			if posted && e.Kind == rewards.EntryRevenue {
				credited = credited.Add(e.UserDelta(rewards.Pending))
			}
		}
		if out.Session != nil {
			row, err := sessionRow(it, *out.Session)
			if err != nil {
				return err
			}
			sessions = append(sessions, row)
			if day.wallet != 0 && credited.IsPositive() {
				days[day] = days[day].Add(credited)
				touchedDays[day] = true
			}
		}
	}
	if err := l.flush(); err != nil {
		return err
	}
	if err := insertRows(tx, `INSERT INTO sessions (inbox_id, property, user_id, session_id, country, duration_seconds, revenue_usd,
		gross, withheld, credited, capped_excess, reason, received_at) VALUES `, sessions, ""); err != nil {
		return err
	}
	var dayRows [][]any
	for k := range touchedDays {
		dayRows = append(dayRows, []any{k.wallet, k.day, days[k].String()})
	}
	if err := insertRows(tx, `INSERT INTO user_days (wallet_id, day, revenue_credited) VALUES `, dayRows,
		` ON CONFLICT (wallet_id, day) DO UPDATE SET revenue_credited = excluded.revenue_credited`); err != nil {
		return err
	}
	return db.saveWallets(tx, wallets, now)
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
	if err := query(tx, &rows, sb.String(), args...); err != nil {
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

type dayKey struct {
	wallet int64
	day    string
}

// loadDays reads the revenue already credited on each session's UTC day of receipt,
// for the wallets locked for them.
func loadDays(tx *gorm.DB, items []applyItem, wallets map[walletKey]*wallet) (map[dayKey]decimal.Decimal, error) {
	days := map[dayKey]decimal.Decimal{}
	var ids []int64
	var names []string
	for _, it := range items {
		w := wallets[walletKey{it.property, it.event.User}]
		if it.event.Kind != rewards.KindSession || w == nil {
			continue
		}
		k := dayKey{w.ID, rewards.DayOf(it.receivedAt)}
		if _, seen := days[k]; !seen {
			days[k] = decimal.Zero
			ids, names = append(ids, k.wallet), append(names, k.day)
		}
	}
	if len(ids) == 0 {
		return days, nil
	}
	var rows []struct {
		WalletID        int64
		Day             string
		RevenueCredited decimal.Decimal
	}
	if err := query(tx, &rows, `SELECT wallet_id, day, revenue_credited FROM user_days WHERE wallet_id IN ? AND day IN ?`, ids, names); err != nil {
		return nil, err
	}
	for _, r := range rows {
		k := dayKey{r.WalletID, r.Day}
		if _, wanted := days[k]; wanted {
			days[k] = r.RevenueCredited
		}
	}
	return days, nil
}

func sessionRow(it applyItem, r rewards.SessionResult) ([]any, error) {
	s := it.event.Session
	if s == nil {
		return nil, errors.New("store: session result for an event without a session")
	}
	return []any{it.inboxID, it.property, it.event.User, s.SessionID, s.Country, s.DurationSeconds, s.RevenueUSD.String(),
		r.Gross.String(), r.Withheld.String(), r.Credited.String(), r.CappedExcess.String(), r.Reason, it.receivedAt}, nil
}
