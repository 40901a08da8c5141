package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"tally/rewards"
)

// The audit log records each admin action that changes money or the inbox (adjustments,
// reversals, replays) with the admin's name, in the same transaction as the action: an
// action that commits is in the log, one that does not is not.

// writeAudit appends one entry to the audit log.
func writeAudit(tx *gorm.DB, e rewards.AuditEntry) error {
	if e.Actor == "" {
		return fmt.Errorf("store: audit %s of %s without an actor: %w", e.Action, e.Target, rewards.ErrInvalidRequest)
	}
	_, err := rawExec(tx, `INSERT INTO audit (actor, action, property, target, reason, detail, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		e.Actor, e.Action, e.Property, e.Target, e.Reason, e.Detail, e.CreatedAt)
	return err
}

type auditRow struct {
	ID        int64
	Actor     string
	Action    string
	Property  string
	Target    string
	Reason    string
	Detail    string
	CreatedAt time.Time
}

// Audit lists audit entries newest first.
func (db *DB) Audit(ctx context.Context, f rewards.AuditFilter) ([]rewards.AuditEntry, error) {
	q := `SELECT id, actor, action, property, target, reason, detail, created_at FROM audit`
	var args []any
	if f.Before > 0 {
		q += ` WHERE id < ?`
		args = append(args, f.Before)
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, max(f.Limit, 1))
	var rows []auditRow
	if err := query(db.gorm.WithContext(ctx), &rows, q, args...); err != nil {
		return nil, translate(err)
	}
	out := make([]rewards.AuditEntry, len(rows))
	for i, r := range rows {
		out[i] = rewards.AuditEntry{ID: r.ID, Actor: r.Actor, Action: r.Action, Property: r.Property, Target: r.Target,
			Reason: r.Reason, Detail: r.Detail, CreatedAt: r.CreatedAt.UTC()}
	}
	return out, nil
}
