package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"tally/rewards"
)

// Webhook delivery (issue 13). Any number of workers, on any replicas, claim due
// deliveries with a lease: the claim sets holder and lease_until in one statement that
// on Postgres locks its rows FOR UPDATE SKIP LOCKED, so two workers never hold one
// delivery at once, and a worker that dies between claim and answer only delays it
// until the lease lapses (at least once). Order per user: a delivery is due only when no
// earlier delivery of the same endpoint and user is still pending.

const deliveryColumns = `d.id, d.property, d.user_id, d.endpoint, d.type, d.body, d.status, d.attempts, d.step, d.next_attempt_at,
	d.last_attempt_at, d.last_status, d.last_error, d.delivered_at, d.created_at`

// failureRunGap: failures further apart than this (longer than any retry gap, 10 h ±
// 20 %) are not one run of failures.
const failureRunGap = 24 * time.Hour

// errDisabled is the last_error of deliveries failed because their endpoint was disabled.
const errDisabled = "endpoint disabled: it failed without a success for too long; retry a delivery to enable it again"

// ClaimDeliveries leases up to limit due deliveries to holder for lease, oldest first,
// at most one per endpoint and user. Pending deliveries of a disabled endpoint are
// failed first, without being sent.
func (db *DB) ClaimDeliveries(ctx context.Context, holder string, limit int, lease time.Duration) ([]rewards.Delivery, error) {
	return db.ClaimDeliveriesFor(ctx, holder, limit, lease, nil)
}

// ClaimDeliveriesFor is ClaimDeliveries of the given (property, url) endpoints only
// (nil: every endpoint): a worker claims only what its config can send, so a replica
// with an older config, during a rolling deploy, leaves the deliveries of an endpoint it
// does not know to the replicas that do. It takes the due longest first, and fails only
// its own endpoints' deliveries when they are disabled (dueDeliveriesSQL, sweepDisabled);
// the result is in id order.
func (db *DB) ClaimDeliveriesFor(ctx context.Context, holder string, limit int, lease time.Duration, endpoints [][2]string) ([]rewards.Delivery, error) {
	if limit <= 0 {
		limit = 100
	}
	var out []rewards.Delivery
	err := db.tx(ctx, func(tx *gorm.DB) error {
		out = nil
		if endpoints != nil && db.dialect == Postgres {
			if _, err := rawExec(tx, claimPlan); err != nil {
				return err
			}
		}
		now := db.now()
		if err := db.sweepDisabled(tx, now, endpoints); err != nil {
			return err
		}
		args := []any{holder, now.Add(lease), now, now}
		only := ""
		if endpoints != nil {
			if len(endpoints) == 0 {
				return nil
			}
			in, inArgs := claimedEndpoints(endpoints)
			only, args = ` AND `+in, append(append(args, inArgs...), limit, now, now)
		} else {
			args = append(args, limit)
		}
		rows, err := rawQuery(tx, `UPDATE webhook_deliveries SET holder = ?, lease_until = ? WHERE id IN (`+dueDeliveriesSQL(db.dialect, only)+`)
			RETURNING `+strings.ReplaceAll(deliveryColumns, "d.", ""), args...)
		if err != nil {
			return err
		}
		if out, err = scanDeliveries(rows, false); err != nil {
			return err
		}
		if db.endOfClaim != nil {
			db.endOfClaim(tx)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// RETURNING reports rows in no promised order; the worker sends oldest first.
	sortDeliveries(out)
	return out, nil
}

// sweepDisabled fails, unsent, the pending deliveries of those of endpoints (nil: of
// every endpoint) that are disabled. A claim's endpoints are looked up first, and each
// disabled one's deliveries are failed by its own key: written as one statement over
// every disabled endpoint, Postgres took each one's share of the outbox from the
// statistics (all of it, beside one endpoint's backlog) and read every pending delivery
// of every endpoint, so with one endpoint disabled anywhere every claim of every
// endpoint read the whole outbox's backlog (20,000 rows a claim; review helper 209).
func (db *DB) sweepDisabled(tx *gorm.DB, now time.Time, endpoints [][2]string) error {
	if endpoints == nil {
		return failDisabled(tx, now, `(property, endpoint) IN (SELECT property, url FROM webhook_endpoints WHERE disabled_at IS NOT NULL)`)
	}
	if len(endpoints) == 0 {
		return nil
	}
	in, args := pairIn("property", "url", endpoints)
	var disabled []struct{ Property, URL string }
	if err := query(tx, &disabled, `SELECT property, url FROM webhook_endpoints WHERE disabled_at IS NOT NULL AND `+in, args...); err != nil {
		return err
	}
	for _, e := range disabled {
		if err := failDisabled(tx, now, `property = ? AND endpoint = ?`, e.Property, e.URL); err != nil {
			return err
		}
	}
	return nil
}

// DueEndpoints returns those of endpoints ((property, url) pairs) where a claim would
// find work now: a due delivery no one holds that is its user's first pending one there
// (the claim's order rule), or a pending delivery while the endpoint is disabled (which
// the claim fails). It is one read for every endpoint: a worker asks it once a poll and
// claims only for those, where each endpoint's lane ran a write transaction (the claim)
// every second, idle or not: a thousand endpoints kept the database at a thousand
// transactions a second doing nothing. Each endpoint's check stops at its first
// user whose head delivery is due.
func (db *DB) DueEndpoints(ctx context.Context, endpoints [][2]string) ([][2]string, error) {
	if len(endpoints) == 0 {
		return nil, nil
	}
	q, args := db.dueEndpointsSQL(endpoints, db.now())
	return db.readEndpoints(ctx, q, args)
}

// readEndpoints runs q (with args), a read of (property, url) pairs, by key.
func (db *DB) readEndpoints(ctx context.Context, q string, args []any) ([][2]string, error) {
	var out [][2]string
	err := db.readByKey(ctx, func(tx *gorm.DB) error {
		out = nil
		rows, err := rawQuery(tx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var e [2]string
			if err := rows.Scan(&e[0], &e[1]); err != nil {
				return err
			}
			out = append(out, e)
		}
		return rows.Err()
	})
	return out, translate(err)
}

// dueEndpointsSQL is DueEndpoints' statement at now, and its arguments.
func (db *DB) dueEndpointsSQL(endpoints [][2]string, now time.Time) (string, []any) {
	values, args := pairValues(endpoints)
	// A due head: a due row no one holds that is its user's first pending delivery
	// there. Messages behind a pending one are not due before it (waitBehindHead), so
	// while an endpoint is down its due rows are the retries come due, a few at a time,
	// and the messages waiting behind them are not read. Due rows are looked up by the
	// endpoint's key in webhook_deliveries_endpoint_due (migration 00033): each
	// endpoint's check starts at its own first due row, whatever other endpoints have.
	dueRows := `SELECT d.id, d.property, d.endpoint, d.user_id FROM webhook_deliveries d
			WHERE d.status = 'pending' AND ` + endpointKey("d.") + ` = ` + endpointKeyOf("p.column1", "p.column2") + `
			AND d.property = p.column1 AND d.endpoint = p.column2
			AND d.next_attempt_at <= ? AND (d.lease_until IS NULL OR d.lease_until <= ?)`
	dueHead := `EXISTS (SELECT 1 FROM (` + dueRows + `) d WHERE ` + usersFirstPending + `)`
	if db.dialect == Postgres {
		// First whether anything is due at all, the cheapest test (one descent of the
		// index): it answers for an idle endpoint, or one whose users all wait for
		// retries. It is a subquery with LIMIT 1, not EXISTS, here and in the disabled
		// endpoint's test below: Postgres made an EXISTS one hashed read of every due
		// (or pending) row of every endpoint, 20,000 rows a poll beside one backlog. Then
		// the first dueRowsRead due rows are read for a head. Many due rows and no head
		// among them are messages written due behind their user's first one (before
		// waitBehindHead, or beside an attempt in flight): then the endpoint's users are
		// stepped through in webhook_deliveries_pending, each user's first pending
		// delivery read once (a skip scan), one index descent per user, not one per
		// message waiting. CASE keeps the order.
		capped := dueRows + ` LIMIT ` + strconv.Itoa(dueRowsRead)
		dueHead = `CASE WHEN (SELECT 1 FROM webhook_deliveries g WHERE g.status = 'pending'
				AND ` + endpointKey("g.") + ` = ` + endpointKeyOf("p.column1", "p.column2") + ` AND g.property = p.column1
				AND g.endpoint = p.column2 AND g.next_attempt_at <= ? AND (g.lease_until IS NULL OR g.lease_until <= ?) LIMIT 1) IS NULL THEN false
			WHEN EXISTS (SELECT 1 FROM (` + capped + `) d WHERE ` + usersFirstPending + `) THEN true
			WHEN (SELECT count(*) FROM (` + capped + `) c) < ` + strconv.Itoa(dueRowsRead) + ` THEN false
			ELSE EXISTS (WITH RECURSIVE heads (user_id, id) AS (
				(SELECT q.user_id, q.id FROM webhook_deliveries q WHERE q.status = 'pending' AND q.property = p.column1
					AND q.endpoint = p.column2 ORDER BY q.user_id, q.id LIMIT 1)
				UNION ALL
				SELECT n.user_id, n.id FROM heads h, LATERAL (SELECT q.user_id, q.id FROM webhook_deliveries q
					WHERE q.status = 'pending' AND q.property = p.column1 AND q.endpoint = p.column2 AND q.user_id > h.user_id
					ORDER BY q.user_id, q.id LIMIT 1) n)
			SELECT 1 FROM heads h JOIN webhook_deliveries d ON d.id = h.id
			WHERE d.next_attempt_at <= ? AND (d.lease_until IS NULL OR d.lease_until <= ?)) END`
		args = append(args, now, now, now, now, now, now) // the test and the capped reads'
	}
	args = append(args, now, now, now)
	q := `SELECT p.column1, p.column2
		FROM (VALUES ` + values + `) AS p
		WHERE ` + dueHead + `
		OR (SELECT e.disabled_at FROM webhook_endpoints e WHERE e.property = p.column1 AND e.url = p.column2) IS NOT NULL
			AND (SELECT 1 FROM webhook_deliveries d WHERE d.status = 'pending'
				AND ` + endpointKey("d.") + ` = ` + endpointKeyOf("p.column1", "p.column2") + ` AND d.property = p.column1
				AND d.endpoint = p.column2 AND (d.lease_until IS NULL OR d.lease_until <= ?) LIMIT 1) IS NOT NULL`
	return q, args
}

// endpointKey is the key of webhook_deliveries_endpoint_due (migration 00033) on the
// columns of a webhook_deliveries row named with prefix ("d."): its property and
// endpoint joined by a space. Only a query written with it uses that index; it is not
// unique (a property with a space would make two endpoints one key), so the columns are
// compared as well.
func endpointKey(prefix string) string {
	return endpointKeyOf(prefix+"property", prefix+"endpoint")
}

// endpointKeyOf is endpointKey of a property and an endpoint given as SQL expressions.
func endpointKeyOf(property, endpoint string) string {
	return `(` + property + ` || ' ' || ` + endpoint + `)`
}

// dueRowsRead is how many due rows of an endpoint DueEndpoints reads for a head before it
// steps through the endpoint's users instead.
const dueRowsRead = 1000

// usersFirstPending holds when delivery d is its user's first pending one at its
// endpoint: the order rule of a claim (dueDeliveriesSQL), and of DueEndpoints, which
// must name an endpoint exactly when a claim would take something there.
const usersFirstPending = `d.id = (SELECT f.id FROM webhook_deliveries f WHERE f.status = 'pending' AND f.property = d.property
				AND f.endpoint = d.endpoint AND f.user_id = d.user_id ORDER BY f.id LIMIT 1)`

// candidateIsFirstPending is usersFirstPending of a claim's candidate c.
var candidateIsFirstPending = strings.NewReplacer("d.id", "c.id", "d.property", "c.property", "d.endpoint", "c.endpoint",
	"d.user_id", "c.user_id").Replace(usersFirstPending)

// dueDeliveriesSQL selects the ids of due deliveries that are their user's first pending
// one at their endpoint (order per user), of the endpoints the condition only (" AND …"
// on the columns of c, or "") names. Its placeholders are now twice, then only's, then
// the limit; when only is not "", now twice more after the limit. The first pending
// delivery is looked up per row through webhook_deliveries_pending, (property, endpoint,
// user_id) to the smallest id: a plan Postgres keeps without statistics. As NOT EXISTS
// (no earlier pending one), on an outbox autovacuum had not analyzed yet, it re-read
// every pending row of the endpoint for each one: 9,000 pending took a claim 20 s, and
// delivery stalled.
//
// The claim of given endpoints takes, as candidates, the users' first deliveries due
// longest, up to the limit, walking webhook_deliveries_endpoint_due in due order and
// passing over a due row not its user's first (behind one being sent, or moved to its
// retry by waitBehindHead) at one lookup each. Then it locks those of them it can,
// testing each locked row's due time, lease and place again: a row another claim
// leased and committed meanwhile is locked as it is now, and Postgres tests again only
// the locked row's own conditions (without, two replicas sent 133 messages of 120). On
// Postgres the candidates are an array read once (an InitPlan), and the rows are
// reached by id: there is no ORDER BY to tempt the planner into walking a due index for
// them. Earlier forms: oldest id first, it read every due row of the endpoint and
// sorted them, each pass (30 ms a claim with 10,000 due; an endpoint back from an outage
// with 100,000 users due spent the database's cores on its claims); then the
// candidates were the first 1,000 due rows whoever they were, so one user's 1,500
// messages waiting behind a retry filled them after an outage, and the endpoint sent
// one message a pass, that user's, while every other user waited (review helper 215:
// 533 passes for 500 users' one message each). The worker sends a claim's deliveries in
// id order.
func dueDeliveriesSQL(d Dialect, only string) string {
	if only == "" {
		due := `SELECT d.id FROM webhook_deliveries d
			WHERE d.status = 'pending' AND d.next_attempt_at <= ? AND (d.lease_until IS NULL OR d.lease_until <= ?)
			AND ` + usersFirstPending + `
			ORDER BY d.id LIMIT ?`
		if d == Postgres {
			due += ` FOR UPDATE SKIP LOCKED`
		}
		return due
	}
	candidates := `SELECT c.id FROM webhook_deliveries c
				WHERE c.status = 'pending' AND c.next_attempt_at <= ? AND (c.lease_until IS NULL OR c.lease_until <= ?)` + only + `
				AND ` + candidateIsFirstPending + `
				ORDER BY c.next_attempt_at LIMIT ?`
	recheck := `(d.status = 'pending' AND d.next_attempt_at <= ? AND (d.lease_until IS NULL OR d.lease_until <= ?))`
	if d == Postgres {
		// The test again is written as an expression no index answers (IS TRUE), so
		// that the rows are reached by their ids: with a condition on its due time,
		// Postgres walked every endpoint's due rows in webhook_deliveries_due for them.
		return `SELECT d.id FROM webhook_deliveries d WHERE d.id = ANY(ARRAY(` + candidates + `))
			AND ` + recheck + ` IS TRUE AND ` + usersFirstPending + `
			FOR UPDATE SKIP LOCKED`
	}
	return `SELECT d.id FROM webhook_deliveries d WHERE d.id IN (` + candidates + `)
			AND ` + recheck + ` AND ` + usersFirstPending
}

// claimPlan is the planner's settings for a claim of given endpoints, whose every
// statement reaches its rows by key: Postgres takes an endpoint's share of the outbox
// from statistics (beside another endpoint's backlog, almost none) and read every due
// row of the endpoint into a bitmap and sorted them where an index scan in due order
// stops at the candidates it needs.
const claimPlan = `SELECT set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true)`

// claimedEndpoints is a claim's condition "c is a delivery of one of endpoints", with
// its arguments. It names the endpoints by their key too (endpointKey), so the claim
// reads its own endpoints' due rows in webhook_deliveries_endpoint_due: by the columns
// alone Postgres read all their pending rows, or every endpoint's due ones.
func claimedEndpoints(endpoints [][2]string) (string, []any) {
	keys := make([]string, len(endpoints))
	args := make([]any, 0, 3*len(endpoints))
	for i, e := range endpoints {
		keys[i] = "?"
		args = append(args, e[0]+" "+e[1])
	}
	in, inArgs := endpointsIn("c.", endpoints)
	return endpointKey("c.") + ` IN (` + strings.Join(keys, ", ") + `) AND ` + in, append(args, inArgs...)
}

// endpointsIn is the condition "(property, endpoint) is one of endpoints" on the columns
// of a webhook_deliveries row named with prefix ("d." or ""), and its arguments.
func endpointsIn(prefix string, endpoints [][2]string) (string, []any) {
	return pairIn(prefix+`property`, prefix+`endpoint`, endpoints)
}

// pairIn is the condition "(a, b) is one of pairs" with its arguments.
func pairIn(a, b string, pairs [][2]string) (string, []any) {
	values, args := pairValues(pairs)
	return `(` + a + `, ` + b + `) IN (VALUES ` + values + `)`, args
}

// pairValues is the rows of a VALUES list of pairs, "(?, ?), (?, ?)…", with their
// arguments.
func pairValues(pairs [][2]string) (string, []any) {
	args := make([]any, 0, 2*len(pairs))
	for _, p := range pairs {
		args = append(args, p[0], p[1])
	}
	return strings.TrimSuffix(strings.Repeat("(?, ?), ", len(pairs)), ", "), args
}

func sortDeliveries(ds []rewards.Delivery) {
	slices.SortFunc(ds, func(a, b rewards.Delivery) int { return cmp.Compare(a.ID, b.ID) })
}

func scanDeliveries(rows *sql.Rows, withEndpoint bool) ([]rewards.Delivery, error) {
	defer rows.Close()
	var out []rewards.Delivery
	for rows.Next() {
		var d rewards.Delivery
		var body string
		var last, delivered, disabled sql.NullTime
		dest := []any{&d.ID, &d.Property, &d.User, &d.Endpoint, &d.Type, &body, &d.Status, &d.Attempts, &d.Step, &d.NextAttemptAt,
			&last, &d.LastStatus, &d.LastError, &delivered, &d.CreatedAt}
		if withEndpoint {
			dest = append(dest, &disabled)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		d.Body = []byte(body)
		d.NextAttemptAt, d.CreatedAt = d.NextAttemptAt.UTC(), d.CreatedAt.UTC()
		if last.Valid {
			d.LastAttemptAt = last.Time.UTC()
		}
		if delivered.Valid {
			d.DeliveredAt = delivered.Time.UTC()
		}
		if disabled.Valid {
			d.EndpointDisabledAt = disabled.Time.UTC()
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// ReleaseDeliveries gives back the deliveries of ids that holder claimed and did not
// send (a worker stopping), so any worker may send them at once, not after the lease.
func (db *DB) ReleaseDeliveries(ctx context.Context, holder string, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	in, arg := db.idIn("id", ids)
	_, err := db.execAlone(ctx, `UPDATE webhook_deliveries SET holder = NULL, lease_until = NULL
		WHERE `+in+` AND holder = ? AND status = 'pending'`, arg, holder)
	return translate(err)
}

// RecordAttempt records the outcome of sending a claimed delivery and the endpoint's
// health, in one transaction. It reports false, changing nothing, when holder no longer
// holds the delivery (its lease lapsed and another worker took it, or it was failed
// meanwhile). It reports whether this attempt disabled the endpoint.
//
// On SQLite the attempts recorded at the same time share one transaction (attempts.go).
func (db *DB) RecordAttempt(ctx context.Context, a rewards.DeliveryAttempt) (recorded, disabled bool, err error) {
	if db.attempts != nil {
		return db.attempts.record(ctx, a)
	}
	err = db.tx(ctx, func(tx *gorm.DB) error {
		recorded, disabled, err = recordAttempt(tx, db.now(), a)
		return err
	})
	return recorded, disabled, err
}

// recordAttempt is RecordAttempt's work in tx at now.
func recordAttempt(tx *gorm.DB, now time.Time, a rewards.DeliveryAttempt) (recorded, disabled bool, err error) {
	status, next := rewards.DeliveryFailed, now
	var delivered *time.Time
	switch {
	case a.OK:
		status, delivered = rewards.DeliveryDelivered, &now
	case a.RetryIn > 0:
		status, next = rewards.DeliveryPending, now.Add(a.RetryIn)
	}
	// An operator's retry while this attempt was in flight reset the step (and made
	// the delivery due now): then a failure is counted, and the delivery stays
	// pending, due, at the step the retry set. (SET reads the row as it was.)
	reset := rewards.DeliveryPending
	if a.OK {
		reset = rewards.DeliveryDelivered
	}
	// The retry is seen in the step it reset, or, for an attempt at step 0, in the
	// due time it moved to its own (a claim leaves next_attempt_at as it was).
	same, sameArgs := `step = ?`, []any{a.Step}
	if !a.Due.IsZero() {
		same, sameArgs = `(step = ? AND next_attempt_at = ?)`, []any{a.Step, a.Due.UTC()}
	}
	args := append(append(append(append(append(append([]any{}, sameArgs...), status, reset), sameArgs...), sameArgs...), next),
		now, a.Status, a.Error, delivered, a.ID, a.Holder)
	var hit []struct {
		Property, Endpoint, UserID, Status string
		NextAttemptAt                      time.Time
	}
	if err := query(tx, &hit, `UPDATE webhook_deliveries SET
		status = CASE WHEN `+same+` THEN ? ELSE ? END,
		step = CASE WHEN `+same+` THEN step + 1 ELSE step END,
		next_attempt_at = CASE WHEN `+same+` THEN ? ELSE next_attempt_at END,
		attempts = attempts + 1, last_attempt_at = ?, last_status = ?, last_error = ?, delivered_at = ?, holder = NULL, lease_until = NULL
		WHERE id = ? AND holder = ? AND status = 'pending' RETURNING property, endpoint, user_id, status, next_attempt_at`, args...); err != nil {
		return false, false, err
	}
	if len(hit) == 0 {
		return false, false, nil
	}
	h := hit[0]
	p, url := h.Property, h.Endpoint
	// The user's messages behind this one, before the endpoint's row: a retry by
	// hand locks its delivery, then that row, so taking the row first and the
	// messages after was a deadlock beside a retry of one of them (review helper
	// 202). A failure that disables the endpoint skips the messages other attempts
	// hold (recordHealth).
	if h.Status == rewards.DeliveryPending {
		err = waitBehindHead(tx, p, url, h.UserID, a.ID, h.NextAttemptAt, now)
	} else {
		err = nextInLine(tx, p, url, h.UserID, now)
	}
	if err != nil {
		return false, false, err
	}
	disabled, err = recordHealth(tx, a, p, url, now)
	return err == nil, disabled, err
}

// recordHealth records an attempt's outcome in its endpoint's row (a success clears a
// run of failures, a failure extends it) and reports whether this failure disabled the
// endpoint, failing its pending deliveries not being sent.
func recordHealth(tx *gorm.DB, a rewards.DeliveryAttempt, p, url string, now time.Time) (bool, error) {
	if a.OK {
		// A success enables the endpoint again: it answers (one of a pass's attempts
		// may succeed after another's failure disabled it). Only a failing or
		// disabled endpoint's row is written: every success wrote it, so every
		// recording of every sender on every replica queued for that one row lock
		// through its commit, and an endpoint took a few hundred messages a second
		// at most. An UPDATE leaves a row its WHERE does not match unlocked (an
		// upsert's DO UPDATE … WHERE would lock it). A row that matches is waited
		// for and checked again, so a success after the failure that disabled the
		// endpoint still enables it (disabling needs a run of failures begun five
		// days before, committed). A first failure in flight beside a success is not
		// waited for: it can leave the endpoint failing since then, until its next
		// success, as if it had committed after.
		return false, tx.Exec(`UPDATE webhook_endpoints SET failing_since = NULL, disabled_at = NULL, last_success_at = ?
			WHERE property = ? AND url = ? AND (failing_since IS NOT NULL OR disabled_at IS NOT NULL)`, now, p, url).Error
	}
	// Failing since the first failure of an unbroken run of them: a failure long
	// after the previous one (more than any retry gap: the endpoint had no traffic)
	// starts a new run, so one failure after a quiet week does not disable it.
	if err := tx.Exec(`INSERT INTO webhook_endpoints (property, url, failing_since, last_failure_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (property, url) DO UPDATE SET failing_since = CASE
			WHEN webhook_endpoints.failing_since IS NULL OR webhook_endpoints.last_failure_at IS NULL
				OR webhook_endpoints.last_failure_at < ? THEN excluded.failing_since
			ELSE webhook_endpoints.failing_since END,
			last_failure_at = excluded.last_failure_at`,
		p, url, now, now, now.Add(-failureRunGap)).Error; err != nil {
		return false, err
	}
	if a.DisableAfter <= 0 {
		return false, nil
	}
	q := tx.Exec(`UPDATE webhook_endpoints SET disabled_at = ? WHERE property = ? AND url = ? AND disabled_at IS NULL AND failing_since <= ?`,
		now, p, url, now.Add(-a.DisableAfter))
	if q.Error != nil || q.RowsAffected == 0 {
		return false, q.Error
	}
	// ClaimDeliveries fails what this leaves, unless a success enabled the endpoint again.
	return true, failDisabled(tx, now, `property = ? AND endpoint = ?`, p, url)
}

// failDisabled fails, as their endpoint is disabled, the pending deliveries that match
// cond (with its arguments args) and are not being sent. One in flight (leased) is left
// to record its attempt: a success there, dropped, was shown failed although the
// publisher had it. On Postgres it also skips the rows another transaction holds, which
// the next claim fails: it waits for no lock, so it is in no deadlock (a recording holds
// its user's messages while it waits for the endpoint's row a disabling failure holds;
// review helper 201), and a delivery being retried by hand is not failed under the retry.
func failDisabled(tx *gorm.DB, now time.Time, cond string, args ...any) error {
	pending := `SELECT id FROM webhook_deliveries WHERE status = 'pending' AND (lease_until IS NULL OR lease_until <= ?)
		AND ` + cond
	if tx.Dialector.Name() == string(Postgres) {
		pending += ` FOR UPDATE SKIP LOCKED`
	}
	_, err := rawExec(tx, `UPDATE webhook_deliveries SET status = ?, last_error = ?, holder = NULL, lease_until = NULL
		WHERE id IN (`+pending+`)`, append([]any{rewards.DeliveryFailed, errDisabled, now}, args...)...)
	return err
}

// parkedBehind is how long after its user's first pending delivery at an endpoint (or
// after now, when that one is due already) a never-sent delivery behind it is due: it is
// parked, out of the due rows that the checks for due work walk (DueEndpoints, the
// claim), and nextInLine makes it due at once when its turn comes. Its due time is a
// bound, not a schedule: a message whose turn came without nextInLine seeing it (see
// headsDue and nextInLine for the ones found) would wait that long, but for the
// workers' sweep (UnparkHeads), which makes it due sooner. A backlog that outlives it
// comes due with what is left of it, and the claims pass over it, one lookup each, as
// before parking.
// Parking it again cost the recording that did it a write of every waiting message:
// past about 160,000 of them, more than a recording's 10 s (review helper 224).
const parkedBehind = time.Hour

// parkedAt is when a delivery parked behind one due at head is due, at now.
func parkedAt(head, now time.Time) time.Time {
	if now.After(head) {
		head = now
	}
	return head.Add(parkedBehind)
}

// waitBehindHead parks the pending deliveries of user at (property, url) after the
// delivery id behind at, its retry: they wait behind it (order per user) and are not due
// before it is delivered or failed for good, when the next one in line is due at once
// (nextInLine), or parkedBehind after its retry. While an endpoint is down, each of its
// users' first message waits for a retry with the rest behind it; due all along, those
// behind made every check for due work (DueEndpoints, each poll; the claim) read past
// them, or walk every user: half a second a poll with 100,000 users, seconds a claim
// with more. Due at the retry itself, they came due with it, and as a backlog drained
// one message a pass each claim read past all that was left (100,000 waiting: 0.4-1.4 s
// a claim; review helper 219). New messages behind a pending one are written parked the
// same way (outbox.flush). A message attempted itself (behind an older one sent again
// by hand) keeps its own retry: moved, it kept the older one's after that was delivered
// (review helper 202). One being sent (leased) is left to its own recording, which would
// take a moved due time for a retry by hand (review helper 204). On Postgres the rows
// are locked in id order, whatever the plan: two recordings of one user's messages (an
// older one sent again by hand beside the next) took them in opposite orders and
// deadlocked (review helper 204).
func waitBehindHead(tx *gorm.DB, property, url, user string, id int64, at, now time.Time) error {
	parked := parkedAt(at, now)
	behind := `SELECT id FROM webhook_deliveries WHERE status = 'pending' AND property = ? AND endpoint = ? AND user_id = ?
		AND id > ? AND attempts = 0 AND next_attempt_at < ? AND (lease_until IS NULL OR lease_until <= ?)`
	if tx.Dialector.Name() == string(Postgres) {
		behind += ` ORDER BY id FOR UPDATE`
	}
	_, err := rawExec(tx, `UPDATE webhook_deliveries SET next_attempt_at = ? WHERE id IN (`+behind+`)`,
		parked, property, url, user, id, parked, now)
	return err
}

// nextInLine makes the user's first pending delivery at (property, url) that is not
// being sent, now next in line, due now if it waits only for the one before it: never
// sent, parked behind that one (waitBehindHead, outbox.flush). A message written while
// the one before it was retried by hand, or a clock stepped back since, would otherwise
// wait for a time that no longer holds (review helper 201). One attempted itself keeps
// its own retry. One being sent (an older message sent again by hand, beside the next)
// is passed over: its own recording calls this when it ends, but two recordings
// committing at once each saw the other's message still pending, and the one behind
// both stayed parked for its hour (review helper 224). Made due behind one still being
// sent, it waits for it all the same (the claim's order), and is parked again if that
// one fails.
func nextInLine(tx *gorm.DB, property, url, user string, now time.Time) error {
	var line []struct {
		ID            int64
		Attempts      int
		NextAttemptAt time.Time
		LeaseUntil    *time.Time
	}
	// A few: more messages of one user sent at once take as many retries by hand.
	if err := query(tx, &line, `SELECT id, attempts, next_attempt_at, lease_until FROM webhook_deliveries
		WHERE status = 'pending' AND property = ? AND endpoint = ? AND user_id = ? ORDER BY id LIMIT 4`, property, url, user); err != nil {
		return err
	}
	for _, d := range line {
		if d.LeaseUntil != nil && d.LeaseUntil.After(now) {
			continue // being sent
		}
		if d.Attempts > 0 || !d.NextAttemptAt.After(now) {
			break // its own retry, or due already
		}
		// Tested again on the row as it is when locked: a retry by hand and a claim may
		// have come between.
		if _, err := rawExec(tx, `UPDATE webhook_deliveries SET next_attempt_at = ? WHERE id = ? AND status = 'pending'
			AND attempts = 0 AND next_attempt_at > ? AND (lease_until IS NULL OR lease_until <= ?)`, now, d.ID, now, now); err != nil {
			return err
		}
		break
	}
	return nil
}

// parkedSlack is how far past now a never-sent delivery must be due for UnparkHeads and
// ParkedEndpoints to take it for parked. A parked one is due parkedBehind (an hour) past
// the one before it, or past when it was parked; a message just written, or just made
// due, is due at its writer's now, which another replica's clock, or the sweep's own now
// read a moment before, can put a little in the future (review helper 226: clocks two
// seconds apart took every new first message for an unseen turn).
const parkedSlack = 10 * time.Minute

// ParkedEndpoints names those of endpoints that have a pending delivery due more than
// parkedSlack from now: a parked one, or a retry far off. Only those can hold a parked
// first message for UnparkHeads. It is one read for every endpoint, one index descent
// each (webhook_deliveries_endpoint_due), as DueEndpoints is.
func (db *DB) ParkedEndpoints(ctx context.Context, endpoints [][2]string) ([][2]string, error) {
	if len(endpoints) == 0 {
		return nil, nil
	}
	values, args := pairValues(endpoints)
	q := `SELECT p.column1, p.column2 FROM (VALUES ` + values + `) AS p
		WHERE (SELECT 1 FROM webhook_deliveries d WHERE d.status = 'pending'
			AND ` + endpointKey("d.") + ` = ` + endpointKeyOf("p.column1", "p.column2") + `
			AND d.property = p.column1 AND d.endpoint = p.column2 AND d.next_attempt_at > ? LIMIT 1) IS NOT NULL`
	return db.readEndpoints(ctx, q, append(args, db.now().Add(parkedSlack)))
}

// UnparkHeads makes due now every parked first delivery of the users with a pending
// delivery at endpoint, up to limit of them in user order after the user id after: a
// user's first pending delivery there that was never sent, is not being sent, and is
// due more than parkedSlack from now. Its turn came without nextInLine seeing it (five
// of a user's messages sent at once, or a case no review found), and it would wait up
// to parkedBehind. It reports the ids it made due, and the last user it looked at, or
// "" once it looked at the last one (the next call starts over). The workers sweep
// their endpoints with it (webhookUnparkEvery), so such a message waits for the sweep,
// not an hour.
//
// Making a message due never sends it out of order: a claim takes only a user's first
// pending delivery. It reads two index entries for each user it looks at, and locks only
// the parked first ones, skipping a row another transaction holds (a recording, a claim,
// a retry by hand, a write of the next message): the next sweep that reaches the user
// looks again. It waits for no row lock (on SQLite, for its turn at the write lock).
func (db *DB) UnparkHeads(ctx context.Context, endpoint [2]string, after string, limit int) (made []int64, last string, err error) {
	now := db.now()
	cut := now.Add(parkedSlack)
	var heads []int64
	err = db.readByKey(ctx, func(tx *gorm.DB) error {
		heads, last = heads[:0], ""
		p, e := endpoint[0], endpoint[1]
		rows, err := rawQuery(tx, parkedHeadsSQL(db.dialect), p, e, after, p, e, limit, p, e, cut, now)
		if err != nil {
			return err
		}
		defer rows.Close()
		seen := 0
		for rows.Next() {
			var user string
			var id *int64
			if err := rows.Scan(&user, &id); err != nil {
				return err
			}
			if seen++; seen == limit {
				last = user
			}
			if id != nil {
				heads = append(heads, *id)
			}
		}
		return rows.Err()
	})
	if err != nil || len(heads) == 0 {
		return nil, last, translate(err)
	}
	if db.afterParkedRead != nil {
		db.afterParkedRead()
	}
	// Tested again on the row as it is when locked: delivered, claimed or retried by
	// hand since, or behind a message retried by hand, it is left as it is. The test is
	// one IS TRUE expression, so that the rows are reached by id: on an outbox not yet
	// analyzed, Postgres walked webhook_deliveries_due instead, every parked message of
	// every endpoint (review helper 227: 100,000 rows read for 2,000).
	in, arg := db.idIn("d.id", heads)
	parked := `SELECT d.id FROM webhook_deliveries d WHERE ` + in + ` AND (d.status = 'pending' AND d.attempts = 0
		AND d.next_attempt_at > ? AND (d.lease_until IS NULL OR d.lease_until <= ?)) IS TRUE
		AND NOT EXISTS (SELECT 1 FROM webhook_deliveries b WHERE b.status = 'pending' AND b.property = d.property
			AND b.endpoint = d.endpoint AND b.user_id = d.user_id AND b.id < d.id)`
	if db.dialect == Postgres {
		parked += ` FOR UPDATE OF d SKIP LOCKED`
	}
	err = db.tx(ctx, func(tx *gorm.DB) error {
		made = made[:0]
		rows, err := rawQuery(tx, `UPDATE webhook_deliveries SET next_attempt_at = ? WHERE id IN (`+parked+`) RETURNING id`,
			now, arg, cut, now)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return err
			}
			made = append(made, id)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, last, translate(err)
	}
	slices.Sort(made)
	return made, last, nil
}

// parkedHeadsSQL is UnparkHeads' read: it walks the users with a pending delivery at one
// endpoint in the per-user index, one entry each (a recursive skip scan), from the user
// after a given one, up to a limit of them, and returns each with its first delivery's id
// when that one is parked (else NULL). Its arguments: the endpoint's property and URL,
// the user to start after, the property and URL again, the limit, the property and URL
// again, the time past which a parked one is due, and now.
func parkedHeadsSQL(d Dialect) string {
	const users = `WITH RECURSIVE u (user_id, n) AS (
		SELECT (SELECT user_id FROM webhook_deliveries WHERE status = 'pending' AND property = ? AND endpoint = ? AND user_id > ?
			ORDER BY user_id LIMIT 1), 1
		UNION ALL
		SELECT (SELECT s.user_id FROM webhook_deliveries s WHERE s.status = 'pending' AND s.property = ? AND s.endpoint = ?
			AND s.user_id > u.user_id ORDER BY s.user_id LIMIT 1), u.n + 1 FROM u WHERE u.user_id IS NOT NULL AND u.n < ?)
	`
	if d == Postgres {
		return users + `SELECT u.user_id, h.id FROM u LEFT JOIN LATERAL (SELECT g.id FROM (SELECT f.id, f.attempts, f.next_attempt_at, f.lease_until
			FROM webhook_deliveries f WHERE f.status = 'pending' AND f.property = ? AND f.endpoint = ? AND f.user_id = u.user_id
			ORDER BY f.id LIMIT 1) g
			WHERE g.attempts = 0 AND g.next_attempt_at > ? AND (g.lease_until IS NULL OR g.lease_until <= ?)) h ON true
		WHERE u.user_id IS NOT NULL ORDER BY u.n`
	}
	return users + `SELECT u.user_id, f.id FROM u LEFT JOIN webhook_deliveries f ON f.id = (SELECT g.id FROM webhook_deliveries g
			WHERE g.status = 'pending' AND g.property = ? AND g.endpoint = ? AND g.user_id = u.user_id ORDER BY g.id LIMIT 1)
			AND f.attempts = 0 AND f.next_attempt_at > ? AND (f.lease_until IS NULL OR f.lease_until <= ?)
		WHERE u.user_id IS NOT NULL ORDER BY u.n`
}

// Deliveries lists deliveries newest first, each with its endpoint's disabled time.
func (db *DB) Deliveries(ctx context.Context, f rewards.DeliveryFilter) ([]rewards.Delivery, error) {
	q := `SELECT ` + deliveryColumns + `, e.disabled_at FROM webhook_deliveries d
		LEFT JOIN webhook_endpoints e ON e.property = d.property AND e.url = d.endpoint WHERE 1 = 1`
	var args []any
	if f.Status != "" {
		q += ` AND d.status = ?`
		args = append(args, f.Status)
	}
	if f.Before > 0 {
		q += ` AND d.id < ?`
		args = append(args, f.Before)
	}
	q += ` ORDER BY d.id DESC LIMIT ?`
	args = append(args, max(f.Limit, 1))
	rows, err := rawQuery(db.gorm.WithContext(ctx), q, args...)
	if err != nil {
		return nil, translate(err)
	}
	out, err := scanDeliveries(rows, true)
	return out, translate(err)
}

// PruneDeliveries deletes up to limit deliveries delivered before before, oldest first,
// and returns how many it deleted. Pending and failed deliveries are never deleted. The
// ledger, not this table, is the record of money; a delivery is a notification of it.
func (db *DB) PruneDeliveries(ctx context.Context, before time.Time, limit int) (int64, error) {
	// The outer condition is checked again on the row as it is when the delete reaches it:
	// a delivery an operator has just sent again (pending) stays.
	n, err := db.execAlone(ctx, `DELETE FROM webhook_deliveries WHERE id IN (
		SELECT id FROM webhook_deliveries WHERE status = 'delivered' AND delivered_at < ? ORDER BY delivered_at LIMIT ?)
		AND status = 'delivered' AND delivered_at < ?`,
		before, limit, before)
	return n, translate(err)
}

// RetryDelivery makes a delivery due now with its retry schedule started over, whatever
// its status (a delivered one is sent again), and enables its endpoint again if it was
// disabled: retrying is how an operator says the endpoint is fixed. Unknown is
// rewards.ErrNotFound.
func (db *DB) RetryDelivery(ctx context.Context, id int64, actor string) (rewards.Delivery, error) {
	var out rewards.Delivery
	err := db.tx(ctx, func(tx *gorm.DB) error {
		now := db.now()
		var hit []struct{ Property, Endpoint string }
		// A delivery being sent right now keeps its lease: clearing it would let another
		// worker send it at the same time. Its schedule still starts over.
		if err := query(tx, &hit, `UPDATE webhook_deliveries SET
			holder = CASE WHEN status = 'pending' AND lease_until > ? THEN holder ELSE NULL END,
			lease_until = CASE WHEN status = 'pending' AND lease_until > ? THEN lease_until ELSE NULL END,
			status = 'pending', step = 0, next_attempt_at = ?
			WHERE id = ? RETURNING property, endpoint`, now, now, now, id); err != nil {
			return err
		}
		if len(hit) == 0 {
			return fmt.Errorf("store: webhook delivery %d: %w", id, rewards.ErrNotFound)
		}
		if err := tx.Exec(`UPDATE webhook_endpoints SET disabled_at = NULL, failing_since = NULL WHERE property = ? AND url = ?`,
			hit[0].Property, hit[0].Endpoint).Error; err != nil {
			return err
		}
		rows, err := rawQuery(tx, `SELECT `+deliveryColumns+`, e.disabled_at FROM webhook_deliveries d
			LEFT JOIN webhook_endpoints e ON e.property = d.property AND e.url = d.endpoint WHERE d.id = ?`, id)
		if err != nil {
			return err
		}
		got, err := scanDeliveries(rows, true)
		if err != nil || len(got) != 1 {
			return fmt.Errorf("store: reread webhook delivery %d: %v", id, err)
		}
		out = got[0]
		return writeAudit(tx, rewards.AuditEntry{Actor: actor, Action: rewards.AuditWebhook, Property: out.Property,
			Target: "delivery:" + strconv.FormatInt(id, 10), Detail: out.Type + " to " + out.Endpoint, CreatedAt: now})
	})
	return out, err
}
