package store

import (
	"database/sql"
	"errors"
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
//  2. A round reads the id sequence's last value s, then (when there are ids above the
//     floor and the candidate to prove; an idle applier's rounds take none) takes a
//     transaction id b of its own, in that order (the sequence is read in a subquery whose
//     row the outer projection, which asks for b, consumes), in a transaction that had no
//     id before. (s+1, b) is the next candidate. Every transaction that holds an id up to
//     s had its transaction id before s was read: below b.
//  3. A later round whose snapshot has no transaction below b running (its xmin is at
//     least b) knows that every row with an id up to s that will ever exist is committed
//     and visible to it. The floor moves to the lowest recorded id in [floor, s+1), or to
//     s+1 when there is none.
//  4. Nothing sets an event back to recorded, so rows below the floor stay out.
//
// The floor waits for every transaction of the server that held a transaction id at step
// 2 (a long one, of any database, holds it still), so it trails the newest events by a
// few batches; a claim steps over the dead entries of those only. The proof holds for one
// server: behind the same URL after a failover, a restore or a restart, an event whose
// apply was lost can lie below the floor. So every round reads when the server's
// postmaster started (pg_postmaster_start_time: another time on a promoted standby, on
// a server restored from a backup, after a restart), and the floor starts over when that
// changed or when the sequence went back below it. Some cases keep the start time: a
// crash of one backend, after which the postmaster reinitialises without restarting (an
// apply can be lost then only with synchronous_commit or fsync off), and a logical
// restore into the running server. For those, and for claims made in the up to
// floorEvery between a change and the next round, once a minute a round also runs the
// full check: a recorded event below the floor is logged as an error and the floor goes
// back to it, so the event is claimed anyway.
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
	// premise: the inbox's id default and sequence are what the proof needs (checked at
	// the first round, with every full check and after the server changed; premiseKnown
	// once checked).
	premise, premiseKnown bool
	// server is when the postmaster of the server the floor was proven on started, in
	// microseconds since 1970, as the last round read it (0 before the first round).
	server int64
	// log is the store's logger (Options.Log).
	log *slog.Logger
}

const (
	// floorEvery is the least time between two rounds; between them claims use the floor
	// as it is.
	floorEvery = 50 * time.Millisecond
	// floorCheckEvery is how often a round also looks below the floor, and checks again
	// that the inbox's id default and sequence are migration 00013's.
	floorCheckEvery = time.Minute
)

// floorSQL is one round: $1 and $2 are the candidate (next, after), $3 the floor, $4
// whether to look below it. It returns whether the transaction already had a transaction
// id before the round (it must not: step 2 needs the round's own id to come after s), the
// sequence's last value s, a transaction id taken after s when there are ids above the
// candidate and the floor to prove (NULL otherwise: an idle applier takes none), the new
// floor when the candidate is proven (NULL otherwise), the lowest recorded id below the
// floor when asked (NULL when there is none) and when the server started.
const floorSQL = `SELECT q.had, q.s,
	CASE WHEN q.s + 1 > GREATEST($1::bigint, $3::bigint) THEN pg_current_xact_id()::text::bigint END,
	CASE WHEN $1::bigint > 0 AND pg_snapshot_xmin(pg_current_snapshot())::text::bigint >= $2::bigint
		THEN (SELECT COALESCE(MIN(id), $1::bigint) FROM inbox WHERE status = 'recorded' AND id >= $3::bigint AND id < $1::bigint) END,
	CASE WHEN $4::boolean
		THEN (SELECT MIN(id) FROM inbox WHERE status = 'recorded' AND id < $3::bigint) END,
	(extract(epoch FROM pg_postmaster_start_time()) * 1000000)::bigint
	FROM (SELECT pg_current_xact_id_if_assigned() IS NOT NULL AS had,
		COALESCE(pg_sequence_last_value('inbox_id_seq'::regclass), 0) AS s OFFSET 0) q`

// floorPremiseSQL says whether the proof's premises hold in this database: the inbox's
// id default takes the transaction id first, and its sequence hands out one id at a time
// (migration 00013). A migration rolled back, or the sequence's cache raised, turns the
// floor off.
const floorPremiseSQL = `SELECT
	(SELECT seqcache = 1 FROM pg_sequence WHERE seqrelid = 'inbox_id_seq'::regclass)
	AND COALESCE((SELECT btrim(regexp_replace(pg_get_expr(d.adbin, d.adrelid), '\s+', ' ', 'g'))
			LIKE 'CASE WHEN (pg_current_xact_id() IS NOT NULL) THEN nextval(''inbox\_id\_seq''::regclass)%'
		FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
		WHERE d.adrelid = 'inbox'::regclass AND a.attname = 'id'), false)`

// advanceFloor runs a round in tx, at most once per floorEvery, and returns the floor
// claims start at. Call it in the apply transaction before the claim and before anything
// there takes a transaction id, with the batch's enable_seqscan off: the statement is
// prepared once per connection, and a plan made while the inbox was small would scan the
// whole table ever after.
func (db *DB) advanceFloor(tx *gorm.DB) (int64, error) {
	f := &db.floor
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	if now.Sub(f.roundAt) < f.every {
		return f.floor, nil
	}
	check := now.Sub(f.checkedAt) >= f.checkEvery
	if check || !f.premiseKnown {
		var holds bool
		if err := query(tx, &holds, floorPremiseSQL); err != nil {
			return 0, err
		}
		if !holds && (f.premise || !f.premiseKnown) {
			f.log.Error("store: the inbox's id default or sequence is not migration 00013's; the applier's claims start at the first recorded event")
		}
		f.premise, f.premiseKnown = holds, true
		f.checkedAt = now
		if !holds {
			f.floor, f.next, f.after = 0, 0, 0
		}
	}
	if !f.premise {
		f.roundAt = now
		return 0, nil
	}
	rows, err := rawQuery(tx, floorSQL, f.next, f.after, f.floor, check && f.floor > 0)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var (
		had               bool
		s                 int64
		b, proven, missed sql.NullInt64
		server            int64
	)
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return 0, err
		}
		return 0, sql.ErrNoRows
	}
	if err := rows.Scan(&had, &s, &b, &proven, &missed, &server); err != nil {
		return 0, err
	}
	if err := rows.Close(); err != nil {
		return 0, err
	}
	if had {
		return 0, errors.New("store: the claim floor's round ran in a transaction that already had a transaction id")
	}
	f.roundAt = now
	if check {
		f.checkedAt = now
	}
	if f.server != 0 && server != f.server {
		// Another server behind the same URL (a failover, a restore) or the same one
		// restarted: what was proven before may not hold here, nor the premise checked
		// there (the next round checks it again).
		f.log.Warn("store: the database server started anew or is another one; the applier's claim floor starts over",
			"floor", f.floor, "started", time.UnixMicro(server).UTC(), "was", time.UnixMicro(f.server).UTC())
		f.server, f.floor, f.next, f.after = server, 0, 0, 0
		f.premiseKnown = false
		return 0, nil
	}
	f.server = server
	if s+1 < f.floor || s+1 < f.next || (b.Valid && b.Int64 < f.after) {
		// The sequence or the transaction ids went back: another server behind the same
		// URL (a failover, a restore). Nothing proven on the old one holds here.
		f.log.Warn("store: the inbox's id sequence or the transaction ids went back; the applier's claim floor starts over",
			"floor", f.floor, "last_id", s)
		f.floor, f.next, f.after = 0, 0, 0
		return 0, nil
	}
	switch {
	case missed.Valid:
		f.misses++
		f.log.Error("store: a recorded inbox event lies below the applier's claim floor (a bug, or a failover or restore); claims start from it again",
			"event_id", missed.Int64, "floor", f.floor)
		f.floor = missed.Int64 // the candidate stays: the next round proves it from here
	case proven.Valid:
		f.floor = max(f.floor, proven.Int64)
		f.next = 0
	}
	if f.next == 0 && b.Valid {
		f.next, f.after = s+1, b.Int64
	}
	return f.floor, nil
}

// currentFloor is the floor as the last round left it.
func (db *DB) currentFloor() int64 {
	db.floor.mu.Lock()
	defer db.floor.mu.Unlock()
	return db.floor.floor
}
