package store

import (
	"database/sql"
	"log/slog"
	"sync"
	"time"

	"gorm.io/gorm"
)

// The claim floor (Postgres).
//
// The applier claims the oldest recorded events through inbox_recorded, the partial index
// of the inbox rows whose status is 'recorded'. Marking an event applied leaves its entry
// in that index, dead, until a vacuum removes it, and a claim that starts at the index's
// first entry steps over every one of them: on an inbox of 1.18M applied events never
// vacuumed, an empty claim read 3,133 buffers and took 9 ms, and under ingest load the
// claim was a fifth of Postgres's time. By default autovacuum waits until a fifth of a
// table is dead, so on a large inbox millions of dead entries sit in front of every claim.
//
// So a claim starts at a floor: an id below which no inbox row is recorded, or ever will
// be. Ingest transactions commit out of id order, so the floor cannot simply follow the
// last id applied; a round (advanceFloor) proves each step:
//
//  1. An inbox row takes its id after its transaction has a transaction id (the column
//     default, migration 00013).
//  2. A round reads the id sequence's last value s, then takes a transaction id b of its
//     own, in that order (the sequence is read in a subquery whose row the outer
//     projection, which asks for b, consumes). Every transaction that holds an id up to s
//     had its transaction id before s was read: below b.
//  3. A later round whose snapshot has no transaction below b running (its xmin is at
//     least b) knows that every row with an id up to s that will ever exist is committed
//     and visible to it. The floor moves to the lowest recorded id in [floor, s+1), or to
//     s+1 when there is none.
//  4. Nothing sets an event back to recorded, so rows below the floor stay out.
//
// The floor waits for every transaction of the server that was running at step 2 (a long
// one, of any database, holds it still), so it trails the newest events by a few batches;
// a claim steps over the dead entries of those only. A round also runs, once a minute,
// the full check: a recorded event below the floor would mean the proof above is broken;
// it is logged as an error and the floor goes back to it, so the event is claimed anyway.
//
// SQLite needs none of this: it has one writer at a time and removes an index entry when
// its row changes.
type claimFloor struct {
	mu sync.Mutex
	// floor: no inbox row with a smaller id is recorded, or ever will be.
	floor int64
	// next is a candidate floor: every id below it was taken by a transaction whose
	// transaction id is below after. 0: none yet.
	next, after int64
	// every and checkEvery are floorEvery and floorCheckEvery (tests shorten them);
	// roundAt and checkedAt are when the last round and the last full check ran.
	every, checkEvery  time.Duration
	roundAt, checkedAt time.Time
	// misses counts the recorded events a full check found below the floor: a bug.
	misses int64
}

const (
	// floorEvery is the least time between two rounds; between them claims use the floor
	// as it is. A round takes a transaction id, so an idle applier polling often does not
	// use one each time.
	floorEvery = 50 * time.Millisecond
	// floorCheckEvery is how often a round also looks below the floor.
	floorCheckEvery = time.Minute
)

// floorSQL is one round: $1 and $2 are the candidate (next, after), $3 the floor, $4
// whether to look below it. It returns the sequence's last value, the round's own
// transaction id, the new floor when the candidate is proven (NULL otherwise) and the
// lowest recorded id below the floor when asked (NULL when there is none).
const floorSQL = `SELECT q.s, pg_current_xact_id()::text::bigint,
	CASE WHEN $1::bigint > 0 AND pg_snapshot_xmin(pg_current_snapshot())::text::bigint >= $2::bigint
		THEN (SELECT COALESCE(MIN(id), $1::bigint) FROM inbox WHERE status = 'recorded' AND id >= $3::bigint AND id < $1::bigint) END,
	CASE WHEN $4::boolean
		THEN (SELECT MIN(id) FROM inbox WHERE status = 'recorded' AND id < $3::bigint) END
	FROM (SELECT COALESCE(pg_sequence_last_value('inbox_id_seq'::regclass), 0) AS s OFFSET 0) q`

// advanceFloor runs a round in tx, at most once per floorEvery, and returns the floor
// claims start at. Call it in the apply transaction before the claim, with the batch's
// enable_seqscan off: the statement is prepared once per connection, and a plan made
// while the inbox was small would scan the whole table ever after.
func (db *DB) advanceFloor(tx *gorm.DB) (int64, error) {
	f := &db.floor
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	if now.Sub(f.roundAt) < f.every {
		return f.floor, nil
	}
	check := f.floor > 0 && now.Sub(f.checkedAt) >= f.checkEvery
	rows, err := rawQuery(tx, floorSQL, f.next, f.after, f.floor, check)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var (
		s, b           int64
		proven, missed sql.NullInt64
	)
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return 0, err
		}
		return 0, sql.ErrNoRows
	}
	if err := rows.Scan(&s, &b, &proven, &missed); err != nil {
		return 0, err
	}
	if err := rows.Close(); err != nil {
		return 0, err
	}
	f.roundAt = now
	if check {
		f.checkedAt = now
	}
	switch {
	case missed.Valid:
		f.misses++
		slog.Error("store: a recorded inbox event lies below the applier's claim floor; claims start from it again",
			"event_id", missed.Int64, "floor", f.floor)
		f.floor = missed.Int64 // the candidate stays: the next round proves it from here
	case proven.Valid:
		f.floor = max(f.floor, proven.Int64)
		f.next = 0
	}
	if f.next == 0 {
		f.next, f.after = s+1, b
	}
	return f.floor, nil
}

// currentFloor is the floor as the last round left it.
func (db *DB) currentFloor() int64 {
	db.floor.mu.Lock()
	defer db.floor.mu.Unlock()
	return db.floor.floor
}
