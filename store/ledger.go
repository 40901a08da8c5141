package store

import (
	"fmt"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"gorm.io/gorm"

	"tally/rewards"
)

// posting is where an entry comes from.
type posting struct {
	inboxID *int64
	ref     string
	now     time.Time
}

type claimKey struct{ property, user, claim string }

// ledger buffers the entries of one transaction and writes them on flush with a few
// multi-row statements (journal, legs, claims, lots), so a batch of many events costs a
// handful of round trips instead of several per entry. The wallets it is given must be
// locked by the caller; it updates them in memory.
type ledger struct {
	db     *DB
	tx     *gorm.DB
	claims map[claimKey]bool // claims looked up under the wallet locks: true = taken
	queue  []queued
}

type queued struct {
	w         *wallet
	e         rewards.Entry
	p         posting
	maturesAt *time.Time
	lot       decimal.Decimal // pending credit (or pending debit) that settlement will move
}

func (db *DB) newLedger(tx *gorm.DB) *ledger {
	return &ledger{db: db, tx: tx, claims: map[claimKey]bool{}}
}

// loadClaims learns which of keys are taken. Call it after the wallets are locked: all
// claims of a user are written under that user's wallet lock, so the answer stays true
// until commit.
func (l *ledger) loadClaims(keys []claimKey) error {
	byProperty := map[string][]claimKey{}
	for _, k := range keys {
		if _, known := l.claims[k]; !known {
			l.claims[k] = false
			byProperty[k.property] = append(byProperty[k.property], k)
		}
	}
	for property, ks := range byProperty {
		users, claims := make([]string, 0, len(ks)), make([]string, 0, len(ks))
		for _, k := range ks {
			users, claims = append(users, k.user), append(claims, k.claim)
		}
		var rows []struct{ UserID, Claim string }
		if err := query(l.tx, &rows, `SELECT user_id, claim FROM claims WHERE property = ? AND user_id IN ? AND claim IN ?`,
			property, users, claims); err != nil {
			return err
		}
		for _, r := range rows {
			l.claims[claimKey{property, r.UserID, r.Claim}] = true
		}
	}
	return nil
}

// add queues one balanced entry for wallet w and applies it to the wallet in memory. It
// reports false, queuing nothing, when the entry's claim is taken already.
func (l *ledger) add(w *wallet, e rewards.Entry, p posting) (bool, error) {
	if !e.Balanced() {
		return false, fmt.Errorf("store: unbalanced %s entry for %q", e.Kind, w.UserID)
	}
	for _, leg := range e.Legs {
		if err := rewards.CheckAmount(leg.Amount); err != nil {
			return false, fmt.Errorf("store: %s leg: %w", e.Kind, err)
		}
	}
	if e.Claim != "" {
		k := claimKey{w.Property, w.UserID, e.Claim}
		taken, known := l.claims[k]
		if !known {
			return false, fmt.Errorf("store: claim %q of %q was not loaded before posting", e.Claim, w.UserID)
		}
		if taken {
			return false, nil
		}
		l.claims[k] = true
	}
	q := queued{w: w, e: e, p: p}
	if !e.MaturesAt.IsZero() {
		t := e.MaturesAt.UTC().Truncate(time.Microsecond)
		q.maturesAt = &t
	}
	dPending, dAvailable := e.UserDelta(rewards.Pending), e.UserDelta(rewards.Available)
	// A pending adjustment is a lot too (negative for a debit), so pending − carry stays
	// the sum of unsettled lots and settlement nets it.
	if (isCredit(e.Kind) && dPending.IsPositive()) || (e.Kind == rewards.EntryAdjustment && !dPending.IsZero()) {
		q.lot = dPending
		if q.maturesAt == nil {
			q.maturesAt = &p.now
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
	l.queue = append(l.queue, q)
	return true, nil
}

// flush writes everything queued. Journal ids are reserved first, so legs, claims and
// lots can reference their journal row in the same multi-row statements.
func (l *ledger) flush() error {
	if len(l.queue) == 0 {
		return nil
	}
	ids, err := l.db.allocIDs(l.tx, "journal", len(l.queue))
	if err != nil {
		return err
	}
	var journal, legs, claims, lots [][]any
	for i, q := range l.queue {
		jid, w, e, now := ids[i], q.w, q.e, q.p.now
		journal = append(journal, []any{jid, w.Property, w.UserID, string(e.Kind), e.Rule, e.RuleVersion, q.p.inboxID, q.p.ref, q.maturesAt, now})
		for _, leg := range e.Legs {
			legs = append(legs, []any{jid, w.Property, w.UserID, leg.System, string(leg.Bucket), string(e.Kind), leg.Amount.String(), now})
		}
		if e.Claim != "" {
			claims = append(claims, []any{w.Property, w.UserID, e.Claim, jid, now})
		}
		if !q.lot.IsZero() {
			lots = append(lots, []any{w.ID, jid, q.lot.String(), *q.maturesAt})
		}
	}
	l.queue = l.queue[:0]
	for _, ins := range []struct {
		head string
		rows [][]any
	}{
		{`INSERT INTO journal (id, property, user_id, kind, rule, rule_version, inbox_id, ref, matures_at, created_at) VALUES `, journal},
		{`INSERT INTO entries (journal_id, property, user_id, account, bucket, kind, amount, created_at) VALUES `, legs},
		// The claims primary key is the guarantee: a claim taken twice fails the transaction.
		{`INSERT INTO claims (property, user_id, claim, journal_id, created_at) VALUES `, claims},
		{`INSERT INTO lots (wallet_id, journal_id, amount, matures_at) VALUES `, lots},
	} {
		if err := insertRows(l.tx, ins.head, ins.rows, ""); err != nil {
			return err
		}
	}
	return nil
}

// post appends one entry now: add then flush. It reports false when the entry's claim
// was taken already.
func (db *DB) post(tx *gorm.DB, w *wallet, e rewards.Entry, p posting) (bool, error) {
	l := db.newLedger(tx)
	if e.Claim != "" {
		if err := l.loadClaims([]claimKey{{w.Property, w.UserID, e.Claim}}); err != nil {
			return false, err
		}
	}
	ok, err := l.add(w, e, p)
	if err != nil || !ok {
		return ok, err
	}
	return true, l.flush()
}

// isCredit reports the kinds that credit pending from a rule.
func isCredit(k rewards.EntryKind) bool {
	return k == rewards.EntryRevenue || k == rewards.EntryTarget || k == rewards.EntryAchievement
}

// saveWallets writes back every wallet changed in this transaction and stamps it for the
// balance feed (feed.go): one statement on Postgres, where round trips cost; one per
// wallet on SQLite, where they do not.
func (db *DB) saveWallets(tx *gorm.DB, wallets map[walletKey]*wallet, now time.Time) error {
	var dirty []*wallet
	for _, w := range wallets {
		if !w.dirty {
			continue
		}
		for _, v := range []decimal.Decimal{w.Pending, w.Available, w.Carry} {
			if v.IsNegative() {
				return fmt.Errorf("store: wallet %d would go negative: %w", w.ID, rewards.ErrInsufficientFunds)
			}
		}
		dirty = append(dirty, w)
	}
	if len(dirty) == 0 {
		return nil
	}
	stamp, stampArgs, err := feedStamp(tx)
	if err != nil {
		return err
	}
	if db.dialect == Postgres {
		rows := make([][]any, len(dirty))
		for i, w := range dirty {
			rows[i] = []any{w.ID, w.Pending.String(), w.Available.String(), w.Carry.String(), w.Redeemed.String(), w.LifetimeEarned.String()}
		}
		err = inChunks(rows, func(rows [][]any) error {
			var sb strings.Builder
			args := make([]any, 0, 1+len(rows)*6)
			sb.WriteString(`UPDATE wallets AS w SET pending = v.pending, available = v.available, carry = v.carry,
				redeemed = v.redeemed, lifetime_earned = v.lifetime_earned, updated_at = ?, feed_seq = ` + stamp + ` FROM (VALUES `)
			args = append(args, now)
			args = append(args, stampArgs...)
			for i, r := range rows {
				if i > 0 {
					sb.WriteString(", ")
				}
				sb.WriteString("(?::bigint, ?::numeric, ?::numeric, ?::numeric, ?::numeric, ?::numeric)")
				args = append(args, r...)
			}
			sb.WriteString(`) AS v (id, pending, available, carry, redeemed, lifetime_earned) WHERE w.id = v.id`)
			q := tx.Exec(sb.String(), args...)
			if q.Error == nil && q.RowsAffected != int64(len(rows)) {
				return fmt.Errorf("store: updated %d wallets, wanted %d", q.RowsAffected, len(rows))
			}
			return q.Error
		})
		if err != nil {
			return err
		}
	} else {
		for _, w := range dirty {
			args := append([]any{w.Pending.String(), w.Available.String(), w.Carry.String(), w.Redeemed.String(), w.LifetimeEarned.String(), now},
				stampArgs...)
			if err := tx.Exec(`UPDATE wallets SET pending = ?, available = ?, carry = ?, redeemed = ?, lifetime_earned = ?, updated_at = ?, feed_seq = `+
				stamp+` WHERE id = ?`, append(args, w.ID)...).Error; err != nil {
				return err
			}
		}
	}
	for _, w := range dirty {
		w.UpdatedAt, w.dirty = now, false
	}
	return nil
}

// allocIDs reserves n ids of table, so rows that reference each other can be written
// with multi-row INSERTs without relying on the order RETURNING reports them in. On
// Postgres they come from the table's sequence; on SQLite the immediate transaction
// holds the only write lock, so the ids after the current maximum are ours until commit.
func (db *DB) allocIDs(tx *gorm.DB, table string, n int) ([]int64, error) {
	ids := make([]int64, 0, n)
	if db.dialect == Postgres {
		if err := query(tx, &ids, `SELECT nextval(pg_get_serial_sequence(?, 'id')) FROM generate_series(1, ?)`, table, n); err != nil {
			return nil, err
		}
		if len(ids) != n {
			return nil, fmt.Errorf("store: reserved %d %s ids, wanted %d", len(ids), table, n)
		}
		return ids, nil
	}
	var top int64
	if err := query(tx, &top, `SELECT COALESCE(MAX(id), 0) FROM `+table); err != nil {
		return nil, err
	}
	for i := int64(1); i <= int64(n); i++ {
		ids = append(ids, top+i)
	}
	return ids, nil
}

// insertRows runs head + VALUES rows + tail in as few statements as the bind-parameter
// limit allows.
func insertRows(tx *gorm.DB, head string, rows [][]any, tail string) error {
	return inChunks(rows, func(rows [][]any) error {
		sql, args := valuesSQL(head, rows, tail)
		return tx.Exec(sql, args...).Error
	})
}

// maxParams bounds the bind parameters of one statement (SQLite allows 32766, Postgres
// 65535).
const maxParams = 30000

// valuesSQL builds head + "(?, ?), (?, ?)" + tail for rows of equal width.
func valuesSQL(head string, rows [][]any, tail string) (string, []any) {
	var sb strings.Builder
	sb.WriteString(head)
	args := make([]any, 0, len(rows)*len(rows[0]))
	tuple := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(rows[0])), ", ") + ")"
	for i, r := range rows {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(tuple)
		args = append(args, r...)
	}
	sb.WriteString(tail)
	return sb.String(), args
}

// inChunks calls fn on consecutive slices of rows small enough for one statement.
func inChunks(rows [][]any, fn func([][]any) error) error {
	if len(rows) == 0 {
		return nil
	}
	per := max(1, maxParams/len(rows[0]))
	for start := 0; start < len(rows); start += per {
		if err := fn(rows[start:min(start+per, len(rows))]); err != nil {
			return err
		}
	}
	return nil
}
