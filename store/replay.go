package store

import (
	"context"
	"encoding/json"
	"fmt"

	"gorm.io/gorm"

	"tally/rewards"
)

// Kept lists inbox events with the given status, oldest first, after id afterID, at most
// limit of them; property "" means every property.
func (db *DB) Kept(ctx context.Context, status, property string, afterID int64, limit int) ([]rewards.Kept, error) {
	q := `SELECT id, property, event, raw_body, received_at, status, reason FROM inbox WHERE status = ? AND id > ?`
	args := []any{status, afterID}
	if property != "" {
		q += ` AND property = ?`
		args = append(args, property)
	}
	q += ` ORDER BY id LIMIT ?`
	args = append(args, limit)
	var rows []inboxRow
	if err := db.gorm.WithContext(ctx).Raw(q, args...).Scan(&rows).Error; err != nil {
		return nil, translate(err)
	}
	out := make([]rewards.Kept, len(rows))
	for i, r := range rows {
		var ev rewards.Event
		if err := json.Unmarshal([]byte(r.Event), &ev); err != nil {
			return nil, fmt.Errorf("store: inbox %d: decode event: %w", r.ID, err)
		}
		out[i] = rewards.Kept{ID: r.ID, Property: r.Property, Event: ev, Raw: r.RawBody, ReceivedAt: r.ReceivedAt.UTC(), Status: r.Status, Reason: r.Reason}
	}
	return out, nil
}

// Reapply applies a quarantined event now, as of its original receipt (day caps and
// holds count from then). The inbox row keeps in.Event as the event applied (replay may
// have decoded the raw body anew). The status change from quarantined is made in the same
// transaction as the postings, so each kept event is applied exactly once even when
// several replays run at once; an event no longer quarantined is left alone
// (Duplicate=true in the receipt).
func (db *DB) Reapply(ctx context.Context, id int64, in rewards.Inbound) (rewards.Receipt, error) {
	var res rewards.Receipt
	err := db.tx(ctx, func(tx *gorm.DB) error {
		now := db.now()
		var rows []inboxRow
		if err := tx.Raw(`SELECT id, received_at FROM inbox WHERE id = ?`, id).Scan(&rows).Error; err != nil {
			return err
		}
		if len(rows) == 0 {
			return fmt.Errorf("inbox event %d: %w", id, rewards.ErrNotFound)
		}
		ev, err := json.Marshal(in.Event)
		if err != nil {
			return fmt.Errorf("store: encode event: %w", err)
		}
		upd := tx.Exec(`UPDATE inbox SET status = ?, reason = '', applied_at = ?, event = ? WHERE id = ? AND status = ?`,
			rewards.StatusApplied, now, string(ev), id, rewards.StatusQuarantined)
		if upd.Error != nil {
			return upd.Error
		}
		res = rewards.Receipt{EventID: id, Status: rewards.StatusApplied}
		if upd.RowsAffected == 0 {
			res.Duplicate = true
			return nil
		}
		if reason := quarantineReason(in); reason != "" {
			res.Status, res.Reason = rewards.StatusQuarantined, reason
			return setQuarantined(tx, id, reason)
		}
		return db.apply(tx, []applyItem{{inboxID: id, property: in.Property, event: in.Event, rules: *in.Rules,
			receivedAt: rows[0].ReceivedAt.UTC(), result: &res}}, now)
	})
	return res, err
}
