package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"gorm.io/gorm"

	"tally/rewards"
)

// Ingest records a batch of events in one transaction: each new event gets its inbox row
// and, unless quarantined, its ledger entries and wallet updates; a redelivery (same
// property, source and dedupe key) changes nothing and is reported as a duplicate. The
// batch commits whole or not at all; on error nothing of it is saved.
func (db *DB) Ingest(ctx context.Context, batch []rewards.Inbound) ([]rewards.Receipt, error) {
	var results []rewards.Receipt
	err := db.tx(ctx, func(tx *gorm.DB) error {
		results = make([]rewards.Receipt, len(batch))
		now := db.now()
		var toApply []applyItem
		for i, in := range batch {
			res, fresh, err := db.insertInbox(tx, in, now)
			if err != nil {
				return err
			}
			results[i] = res
			if !fresh {
				continue
			}
			if reason := quarantineReason(in); reason != "" {
				if err := setQuarantined(tx, res.EventID, reason); err != nil {
					return err
				}
				results[i].Status, results[i].Reason = rewards.StatusQuarantined, reason
				continue
			}
			toApply = append(toApply, applyItem{inboxID: res.EventID, property: in.Property, event: in.Event, rules: *in.Rules, receivedAt: now, result: &results[i]})
		}
		return db.apply(tx, toApply, now)
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
	UserID     string
	Kind       string
	EventType  string
	RawBody    []byte
	Event      string
	ReceivedAt time.Time
	Status     string
	Reason     string
}

// insertInbox inserts the inbox row unless the dedupe key exists; the unique constraint,
// not a prior check, decides, so concurrent redeliveries cannot both insert.
func (db *DB) insertInbox(tx *gorm.DB, in rewards.Inbound, now time.Time) (rewards.Receipt, bool, error) {
	ev, err := json.Marshal(in.Event)
	if err != nil {
		return rewards.Receipt{}, false, fmt.Errorf("store: encode event: %w", err)
	}
	var id int64
	q := tx.Raw(`INSERT INTO inbox (property, source, dedupe_key, user_id, kind, event_type, raw_body, event, received_at, status, applied_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (property, source, dedupe_key) DO NOTHING RETURNING id`,
		in.Property, string(in.Event.Source), in.Event.DedupeKey, in.Event.User, string(in.Event.Kind), in.Event.Type,
		in.Raw, string(ev), now, rewards.StatusApplied, now).Scan(&id)
	if q.Error != nil {
		return rewards.Receipt{}, false, q.Error
	}
	if q.RowsAffected > 0 && id != 0 {
		return rewards.Receipt{EventID: id, Status: rewards.StatusApplied}, true, nil
	}
	var prev inboxRow
	err = tx.Raw(`SELECT id, status, reason FROM inbox WHERE property = ? AND source = ? AND dedupe_key = ?`,
		in.Property, string(in.Event.Source), in.Event.DedupeKey).Scan(&prev).Error
	if err != nil {
		return rewards.Receipt{}, false, err
	}
	if prev.ID == 0 {
		return rewards.Receipt{}, false, fmt.Errorf("store: inbox conflict on %q but no row found", in.Event.DedupeKey)
	}
	return rewards.Receipt{EventID: prev.ID, Duplicate: true, Status: prev.Status, Reason: prev.Reason}, false, nil
}

func setQuarantined(tx *gorm.DB, id int64, reason string) error {
	return tx.Exec(`UPDATE inbox SET status = ?, reason = ?, applied_at = NULL WHERE id = ?`, rewards.StatusQuarantined, reason, id).Error
}
