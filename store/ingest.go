package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"gorm.io/gorm"

	"tally/rewards"
)

// Ingest records a batch of events in one transaction: each new event gets its inbox row
// and, unless quarantined, its ledger entries and wallet updates; a redelivery (same
// property, source and dedupe key, also twice within the batch) changes nothing and is
// reported as a duplicate. The batch commits whole or not at all; on error nothing of it
// is saved.
func (db *DB) Ingest(ctx context.Context, batch []rewards.Inbound) ([]rewards.Receipt, error) {
	var results []rewards.Receipt
	err := db.tx(ctx, func(tx *gorm.DB) error {
		results = make([]rewards.Receipt, len(batch))
		now := db.now()
		fresh, err := db.insertInbox(tx, batch, now, results)
		if err != nil {
			return err
		}
		var toApply []applyItem
		for i, in := range batch {
			if fresh[i] && results[i].Status == rewards.StatusApplied {
				toApply = append(toApply, applyItem{inboxID: results[i].EventID, property: in.Property, event: in.Event,
					rules: *in.Rules, receivedAt: now, result: &results[i]})
			}
		}
		if err := db.apply(tx, toApply, now); err != nil {
			return err
		}
		// A copy of an event delivered earlier in this same batch answers with what
		// became of the first copy, which apply may have just quarantined.
		first := map[int64]int{}
		for i := range results {
			if fresh[i] {
				first[results[i].EventID] = i
			} else if j, ok := first[results[i].EventID]; ok {
				results[i].Status, results[i].Reason = results[j].Status, results[j].Reason
			}
		}
		if db.afterApply != nil {
			return db.afterApply()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

func quarantineReason(in rewards.Inbound) string {
	switch {
	case in.Quarantine != "":
		return in.Quarantine
	case in.Rules == nil:
		return "property not configured"
	}
	return ""
}

type inboxRow struct {
	ID         int64
	Property   string
	Source     string
	DedupeKey  string
	Event      string
	RawBody    []byte
	ReceivedAt time.Time
	Status     string
	Reason     string
}

type dedupeKey struct{ property, source, key string }

// insertInbox inserts the batch's inbox rows with one statement that skips keys already
// recorded; the unique constraint, not a prior check, decides, so concurrent redeliveries
// cannot both insert. It fills results and reports which events are new.
func (db *DB) insertInbox(tx *gorm.DB, batch []rewards.Inbound, now time.Time, results []rewards.Receipt) ([]bool, error) {
	// Rows go in key order: two batches holding the same keys in opposite order would
	// otherwise each wait on the other's uncommitted unique-index entry (a deadlock).
	order := make([]int, len(batch))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		x, y := batch[order[a]], batch[order[b]]
		if x.Property != y.Property {
			return x.Property < y.Property
		}
		if x.Event.Source != y.Event.Source {
			return x.Event.Source < y.Event.Source
		}
		return x.Event.DedupeKey < y.Event.DedupeKey
	})
	rows := make([][]any, 0, len(batch))
	for _, i := range order {
		in := batch[i]
		ev, err := json.Marshal(in.Event)
		if err != nil {
			return nil, fmt.Errorf("store: encode event: %w", err)
		}
		status, reason, applied := rewards.StatusApplied, "", &now
		if r := quarantineReason(in); r != "" {
			status, reason, applied = rewards.StatusQuarantined, r, nil
		}
		results[i] = rewards.Receipt{Status: status, Reason: reason}
		rows = append(rows, []any{in.Property, string(in.Event.Source), in.Event.DedupeKey, in.Event.User, string(in.Event.Kind), in.Event.Type,
			in.Raw, string(ev), now, status, reason, applied})
	}
	ids := map[dedupeKey]int64{}
	err := inChunks(rows, func(rows [][]any) error {
		sql, args := valuesSQL(`INSERT INTO inbox (property, source, dedupe_key, user_id, kind, event_type, raw_body, event, received_at, status, reason, applied_at) VALUES `,
			rows, ` ON CONFLICT (property, source, dedupe_key) DO NOTHING RETURNING id, property, source, dedupe_key`)
		var got []inboxRow
		if err := query(tx, &got, sql, args...); err != nil {
			return err
		}
		for _, r := range got {
			ids[dedupeKey{r.Property, r.Source, r.DedupeKey}] = r.ID
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	fresh := make([]bool, len(batch))
	var missing []string
	for i, in := range batch {
		k := dedupeKey{in.Property, string(in.Event.Source), in.Event.DedupeKey}
		if id, ok := ids[k]; ok {
			results[i].EventID, fresh[i] = id, true
			delete(ids, k) // a second copy within the batch is a duplicate of this one
			continue
		}
		missing = append(missing, in.Event.DedupeKey)
	}
	if len(missing) == 0 {
		return fresh, nil
	}
	var prev []inboxRow
	if err := query(tx, &prev, `SELECT id, property, source, dedupe_key, status, reason FROM inbox WHERE dedupe_key IN ?`, missing); err != nil {
		return nil, err
	}
	byKey := make(map[dedupeKey]inboxRow, len(prev))
	for _, r := range prev {
		byKey[dedupeKey{r.Property, r.Source, r.DedupeKey}] = r
	}
	for i, in := range batch {
		if fresh[i] {
			continue
		}
		r, ok := byKey[dedupeKey{in.Property, string(in.Event.Source), in.Event.DedupeKey}]
		if !ok {
			return nil, fmt.Errorf("store: inbox conflict on %q but no row found", in.Event.DedupeKey)
		}
		results[i] = rewards.Receipt{EventID: r.ID, Duplicate: true, Status: r.Status, Reason: r.Reason}
	}
	return fresh, nil
}

func setQuarantined(tx *gorm.DB, id int64, reason string) error {
	return tx.Exec(`UPDATE inbox SET status = ?, reason = ?, applied_at = NULL WHERE id = ?`, rewards.StatusQuarantined, reason, id).Error
}
