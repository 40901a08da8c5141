package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"
)

// A lease is a named row that one holder owns until it expires. It is how replicas avoid
// running the same settlement at once: wasted work, not correctness, depends on it. A
// lease row works the same on both dialects and survives nothing but its expiry, so a
// killed holder blocks others for at most the TTL; there is no session lock to be taken
// on one pooled connection and released on another.

// leaseTTL is how long a lease lasts without renewal. Settlement renews it before each
// batch, which takes well under a second.
const leaseTTL = 2 * time.Minute

func newHolder() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// acquireLease takes the lease name for holder unless another holder's has not expired.
func (db *DB) acquireLease(ctx context.Context, name, holder string) (bool, error) {
	now := db.now()
	n, err := db.execAlone(ctx, `INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE leases.expires_at <= ? OR leases.holder = excluded.holder`, name, holder, now.Add(leaseTTL), now)
	if err != nil {
		return false, translate(err)
	}
	return n == 1, nil
}

// renewLease extends holder's lease; false means it expired and someone else took it.
func (db *DB) renewLease(ctx context.Context, name, holder string) (bool, error) {
	n, err := db.execAlone(ctx, `UPDATE leases SET expires_at = ? WHERE name = ? AND holder = ?`,
		db.now().Add(leaseTTL), name, holder)
	if err != nil {
		return false, translate(err)
	}
	return n == 1, nil
}

// releaseLease gives the lease up, if holder still has it.
func (db *DB) releaseLease(ctx context.Context, name, holder string) error {
	_, err := db.execAlone(ctx, `DELETE FROM leases WHERE name = ? AND holder = ?`, name, holder)
	return translate(err)
}
