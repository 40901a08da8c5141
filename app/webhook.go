package app

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"tally/rewards"
)

// Outbound webhooks (issue 13), after the Standard Webhooks specification. The store
// writes each event to the outbox in the transaction of the change it reports; this file
// sends them: signed, at least once, in order per user and endpoint, with retries.

// Webhook is one endpoint of a property, as cmd builds it from config.
type Webhook struct {
	URL             string
	Secret          string   // whsec_ followed by the base64 key (config validates it)
	PreviousSecrets []string // sign each message too, during a rotation
	Events          []string // rewards.Webhook* types it subscribes to
}

// WebhookStore is what webhook delivery needs from storage.
type WebhookStore interface {
	// Now is the store's clock, which stamps the webhook-timestamp header too.
	Now() time.Time
	ClaimDeliveriesFor(ctx context.Context, holder string, limit int, lease time.Duration, endpoints [][2]string) ([]rewards.Delivery, error)
	// DueEndpoints names those of endpoints a claim would find work for now.
	DueEndpoints(ctx context.Context, endpoints [][2]string) ([][2]string, error)
	RecordAttempt(ctx context.Context, a rewards.DeliveryAttempt) (recorded, disabled bool, err error)
	// ReleaseDeliveries gives back claimed deliveries a stopping worker did not send.
	ReleaseDeliveries(ctx context.Context, holder string, ids []int64) error
	// ParkedEndpoints names those of endpoints with a delivery due far off, where
	// UnparkHeads may find a parked first one.
	ParkedEndpoints(ctx context.Context, endpoints [][2]string) ([][2]string, error)
	// UnparkHeads makes due the parked first deliveries of up to limit of endpoint's
	// users after the user id after, and returns their ids and where to go on ("": over).
	UnparkHeads(ctx context.Context, endpoint [2]string, after string, limit int) (made []int64, last string, err error)
	Deliveries(ctx context.Context, f rewards.DeliveryFilter) ([]rewards.Delivery, error)
	RetryDelivery(ctx context.Context, id int64, actor string) (rewards.Delivery, error)
	PruneDeliveries(ctx context.Context, before time.Time, limit int) (int64, error)
}

const (
	// defaultWebhookTimeout: an answer later than this is a failure (the 10 s).
	defaultWebhookTimeout = 10 * time.Second
	// webhookBatch is how many deliveries one pass claims; webhookParallel how many of
	// them are in flight at once (the claim holds at most one per endpoint and user, so
	// sending them in parallel keeps the order per user).
	webhookBatch    = 100
	webhookParallel = 8
	// webhookLanes is how many endpoints' passes one process runs at once (RunWebhooks):
	// up to webhookLanes × webhookParallel sends started at a time, and as many attempts
	// being recorded (more in flight: those of passes that gave their slot up). A pass
	// holds its slot for at most webhookStall: then it starts no more sends, gives back
	// what it claimed and did not send (due as before), and gives the slot to the next
	// endpoint waiting, its sends in flight finishing without one. An endpoint whose
	// last webhookLateToSlow passes each had a late send runs its passes in one of
	// webhookSlowLanes other slots, where the endpoints that hang or crawl wait for
	// each other, until as many passes in a row send in time (slowAfter). With one
	// pool of four slots each held for a whole pass, four endpoints hanging held every
	// slot for a timeout per eight deliveries, and every other publisher's webhooks
	// waited.
	webhookLanes      = 4
	webhookSlowLanes  = 4
	webhookLateToSlow = 2
	// webhookStall: a send is late when it has no answer within this long, or ends
	// without one (a timeout, a refused connection). A late send also ends its pass's
	// sending at once, as the pass's time in a slot running out does.
	webhookStall = 2 * time.Second
	// webhookPoll is how often an idle worker looks for new deliveries: a publisher
	// hears of a change within about this long.
	webhookPoll = time.Second
	// answerDrain is how long an attempt reads the body of an answer whose status has
	// come (nothing in it is used; reading it lets the connection be reused). An
	// endpoint that answered 2xx and then trickled its body held a lane for the whole
	// timeout on every message, and nothing showed it.
	answerDrain = time.Second
	// recordLimit bounds the recording of one attempt's outcome (or the giving back of
	// unsent deliveries) in the database.
	recordLimit = 10 * time.Second
	// webhookDisableAfter: an endpoint with no success for this long is disabled.
	webhookDisableAfter = 5 * 24 * time.Hour
	// WebhookRetention is how long a delivered delivery is kept (for the deliveries list
	// and a resend by hand); the worker removes older ones every webhookPruneEvery, in
	// statements of webhookPruneBatch rows. Pending and failed ones are kept.
	WebhookRetention  = 30 * 24 * time.Hour
	webhookPruneEvery = time.Hour
	webhookPruneBatch = 1000
	// webhookPruneRounds bounds one prune (50,000 rows), so that the first one after an
	// upgrade, with months of deliveries to remove, holds up sending for seconds, not
	// minutes; the next hour's prune goes on.
	webhookPruneRounds = 50
	// webhookUnparkEvery is how often a worker sweeps its endpoints for a user's first
	// message that waits parked, its turn having come unseen (store.UnparkHeads), and
	// webhookUnparkUsers how many of an endpoint's users with a message pending one sweep
	// looks at (15-106 ms of the database for 2,000, review helper 226); the next sweep
	// goes on from there. Such a message waits for the sweep to reach its user: at most
	// webhookUnparkEvery while fewer users than that wait, and 25 minutes with 100,000.
	// Only the endpoints with a delivery due far off are swept (store.ParkedEndpoints,
	// one read for all of them).
	webhookUnparkEvery = 30 * time.Second
	webhookUnparkUsers = 2000
)

// webhookSchedule is the wait after each failed attempt (jittered by ±20 %): about 18
// hours from the first attempt to the last, the seventh. A delivery whose last attempt
// fails is failed, to be retried by hand.
var webhookSchedule = []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour}

// retryIn is the wait before the next attempt after a failure at step, 0 for none. The
// jitter spreads the retries of many deliveries that failed together (an endpoint that
// was down) so they do not all arrive at once when it comes back.
func retryIn(step int) time.Duration {
	if step < 0 || step >= len(webhookSchedule) {
		return 0
	}
	d := webhookSchedule[step]
	spread := int64(d) * 2 / 5
	return d - time.Duration(spread/2) + time.Duration(rand.Int64N(spread+1))
}

type endpointKey struct{ property, url string }

type endpoint struct {
	keys [][]byte // the secret's, then the previous secrets'
}

// webhooker delivers the outbox.
type webhooker struct {
	store     WebhookStore
	endpoints map[endpointKey]endpoint
	claimable [][2]string // (property, url) of endpoints, the only deliveries this worker claims
	client    *http.Client
	lease     time.Duration
	holder    string
	log       *slog.Logger
	metrics   *Metrics
	// running keeps DeliverWebhooks passes of this process from overlapping; lanes and
	// slow are the slots of RunWebhooks' lanes (webhookLanes, webhookSlowLanes). The
	// claim's lease keeps any two passes from sending one delivery.
	running sync.Mutex
	lanes   *slotPool
	slow    chan struct{}
	// unparkEvery is webhookUnparkEvery (tests shorten it).
	unparkEvery time.Duration
}

// slotPool is the healthy slots. A pass asks for one as short (the endpoint's last pass
// ended by itself: it sent what it claimed in time, less than a whole batch, or claimed
// nothing) or long (the last pass gave its slot up at its 2 s, or at a late send, or sent
// a whole batch: the endpoint has work queued, or answers slowly). A slot that comes free goes to a long pass waiting when no long pass
// holds one, else to the short passes waiting, in the order they asked, then to the long
// ones. So an endpoint working through a queue always has a slot (at least one of them
// does), and a change for an endpoint with nothing queued waits only for a slot to come
// free, not for the turns of every endpoint with a queue: in one queue it waited N / 4 ×
// 2 s behind N of them (review helper 200: 6 s behind sixteen). Turns given to each queue
// in turn (review helper 203) drained quick passes one per long turn, behind twenty-four
// busy endpoints slower than one queue had.
type slotPool struct {
	mu     sync.Mutex
	free   int
	held   [2]int             // slots held by short passes, by long ones
	queues [2][]chan struct{} // short passes waiting, long ones
}

func newSlotPool(n int) *slotPool { return &slotPool{free: n} }

// slowAfter is an endpoint's lane after a pass that sent n deliveries and had a late
// send or not, from run and slow before it: whether its passes run in the slow slots,
// and run, its passes in a row that point the other way (with a late send, in the
// healthy slots; sending in time, in the slow ones). It moves after webhookLateToSlow
// of those in a row. A pass that sent nothing (nothing due: the retries wait) says
// nothing of the endpoint. One late send (a pause, a refused connection during a
// deploy) does not yet move it: in the slow slots, its next pass would wait behind the
// passes of every endpoint that hangs. One pass in time does not bring it back either:
// an endpoint late two passes in three went back and forth, each time holding a healthy
// slot for two late passes and logging the move twice.
func slowAfter(run int, slow, late bool, n int) (int, bool) {
	inTime := !late && n > 0
	switch {
	case late && !slow, inTime && slow:
		run++
	case late, inTime:
		run = 0
	}
	if run >= webhookLateToSlow {
		return 0, !slow
	}
	return run, slow
}

// longAfter reports whether the pass after one that sent n deliveries, and stopped (gave
// its slot up at its 2 s or a late send) or not, is a long one: one that gave its slot
// up, or sent a whole batch, leaves work queued. An endpoint answering at once sends its
// hundred in well under 2 s, and its passes, short, queued with every other endpoint's
// change (review helper 205: 4-6 s behind twenty-four with 300 queued each).
func longAfter(n int, stopped bool) bool { return stopped || n >= webhookBatch }

func passKind(long bool) int {
	if long {
		return 1
	}
	return 0
}

// acquire waits for a slot for a long or a short pass. It reports false when ctx ended
// first, holding no slot.
func (p *slotPool) acquire(ctx context.Context, long bool) bool {
	k := passKind(long)
	p.mu.Lock()
	if p.free > 0 { // nobody waits: release hands a slot to a waiting pass first
		p.free--
		p.held[k]++
		p.mu.Unlock()
		return true
	}
	ready := make(chan struct{})
	p.queues[k] = append(p.queues[k], ready)
	p.mu.Unlock()
	select {
	case <-ready:
		return true
	case <-ctx.Done():
	}
	p.mu.Lock()
	if i := slices.Index(p.queues[k], ready); i >= 0 {
		p.queues[k] = slices.Delete(p.queues[k], i, i+1)
		p.mu.Unlock()
		return false
	}
	p.mu.Unlock()
	p.release(long) // given a slot as ctx ended: it goes to the next
	return false
}

// release gives back a slot acquired for a long or a short pass: to the next pass
// waiting, or to the free ones.
func (p *slotPool) release(long bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.held[passKind(long)]--
	var k int
	switch {
	case len(p.queues[1]) > 0 && p.held[1] == 0:
		k = 1
	case len(p.queues[0]) > 0:
		k = 0
	case len(p.queues[1]) > 0:
		k = 1
	default:
		p.free++
		return
	}
	p.held[k]++
	ready := p.queues[k][0]
	p.queues[k] = slices.Delete(p.queues[k], 0, 1)
	close(ready)
}

func newWebhooker(st WebhookStore, props []Property, timeout time.Duration, log *slog.Logger, m *Metrics) *webhooker {
	if timeout <= 0 {
		timeout = defaultWebhookTimeout
	}
	eps := map[endpointKey]endpoint{}
	for _, p := range props {
	endpoints:
		for _, w := range p.Webhooks {
			var ep endpoint
			for _, s := range append([]string{w.Secret}, w.PreviousSecrets...) {
				key, err := WebhookKey(s)
				if err != nil {
					log.Error("webhook secret unusable; its deliveries wait", "property", p.ID, "url", w.URL, "err", err)
					continue endpoints
				}
				ep.keys = append(ep.keys, key)
			}
			eps[endpointKey{p.ID, w.URL}] = ep
		}
	}
	claimable := make([][2]string, 0, len(eps))
	for k := range eps {
		claimable = append(claimable, [2]string{k.property, k.url})
	}
	slices.SortFunc(claimable, func(a, b [2]string) int { return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1])) })
	b := make([]byte, 12)
	_, _ = crand.Read(b)
	return &webhooker{store: st, endpoints: eps, claimable: claimable, log: log, metrics: m, holder: hex.EncodeToString(b),
		lanes: newSlotPool(webhookLanes), slow: make(chan struct{}, webhookSlowLanes),
		unparkEvery: webhookUnparkEvery,
		// The lease outlives the whole pass (its deliveries go out webhookParallel at a
		// time, each send up to timeout and its recording up to recordLimit) with room to
		// spare: a lease that lapsed while the pass still had the delivery to send would
		// let another replica send it too. (It left out the recordings: a pass whose
		// endpoint hung while the database was slow could outlive it.)
		lease: time.Duration((webhookBatch+webhookParallel-1)/webhookParallel)*(timeout+recordLimit) + time.Minute,
		client: &http.Client{Timeout: timeout,
			// A redirect is a failure, never followed: the endpoint is the configured URL.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}
}

// WebhookKey decodes a Standard Webhooks secret: "whsec_" followed by base64.
func WebhookKey(secret string) ([]byte, error) {
	b64, ok := strings.CutPrefix(secret, "whsec_")
	if !ok {
		return nil, errors.New(`webhook secret must start with "whsec_"`)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("webhook secret: not base64 after whsec_: %w", err)
	}
	if len(key) == 0 {
		return nil, errors.New("webhook secret: empty key")
	}
	return key, nil
}

// signWebhook is the webhook-signature header: for each key, "v1," and the base64
// HMAC-SHA256, keyed by it, of "<id>.<unix seconds>.<body>", separated by spaces.
func signWebhook(keys [][]byte, id string, ts time.Time, body []byte) string {
	sigs := make([]string, len(keys))
	for i, key := range keys {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(id + "." + strconv.FormatInt(ts.Unix(), 10) + "."))
		m.Write(body)
		sigs[i] = "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
	}
	return strings.Join(sigs, " ")
}

// RunWebhooks delivers the outbox until ctx ends. Every `tally serve` runs one; any
// number may run against one database. With no webhook configured it returns at once
// (after removing old deliveries).
//
// Each endpoint has a lane of its own, a loop that claims and sends only its deliveries,
// so an endpoint that hangs or fails delays its own deliveries and no other's. With one
// pass for all endpoints, which waited for every send it had claimed, a publisher whose
// endpoint hung until the timeout held every other publisher's webhooks for up to
// webhookBatch / webhookParallel timeouts a pass.
//
// A lane claims only when woken: by watchDue, which asks the database once a poll which
// endpoints have work, or by its own pass that claimed some. Each lane polled with a
// claim of its own, a write transaction per endpoint every second, idle or not.
func (a *App) RunWebhooks(ctx context.Context) {
	w := a.webhooks
	var lanes sync.WaitGroup
	wakes := make(map[[2]string]chan struct{}, len(w.claimable))
	for _, e := range w.claimable {
		wake := make(chan struct{}, 1)
		wakes[e] = wake
		lanes.Go(func() { a.runLane(ctx, [][2]string{e}, wake) })
	}
	if len(wakes) > 0 {
		lanes.Go(func() { a.watchDue(ctx, wakes) })
		lanes.Go(func() { w.sweepParked(ctx) })
	}
	defer lanes.Wait()
	if len(w.endpoints) == 0 {
		// Deliveries to endpoints since removed from the config still age out (a bounded
		// part at each start).
		a.pruneWebhooks(ctx)
		return
	}
	repeat(ctx, func() time.Duration {
		a.pruneWebhooks(ctx)
		return webhookPruneEvery
	})
}

// repeat runs fn at once, then again as long after each run as it returns, until ctx
// ends (a run that ends with ctx is the last).
func repeat(ctx context.Context, fn func() time.Duration) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		wait := fn()
		if ctx.Err() != nil {
			return
		}
		timer.Reset(wait)
	}
}

// watchDue wakes the lanes of the endpoints that have work, once a webhookPoll (5 ×
// after a failure to ask) until ctx ends.
func (a *App) watchDue(ctx context.Context, wakes map[[2]string]chan struct{}) {
	repeat(ctx, func() time.Duration {
		due, err := a.webhooks.store.DueEndpoints(ctx, a.webhooks.claimable)
		if ctx.Err() != nil {
			return 0 // the last run: repeat returns
		}
		wait := webhookPoll
		if err != nil {
			a.webhooks.log.Error("webhooks: looking for due deliveries failed; retrying", "err", err)
			wait = 5 * webhookPoll
		}
		for _, e := range due {
			if wake, ok := wakes[e]; ok { // not an endpoint this config has: left alone
				select {
				case wake <- struct{}{}:
				default: // already woken
				}
			}
		}
		return wait
	})
}

// sweepParked sweeps the endpoints for parked first messages (unpark) every
// unparkEvery until ctx ends, on its own: a sweep that takes a while holds up no poll.
// watchDue's next poll wakes the lanes of what it made due.
func (w *webhooker) sweepParked(ctx context.Context) {
	after := map[[2]string]string{} // where each endpoint's next sweep goes on
	repeat(ctx, func() time.Duration {
		w.unpark(ctx, after)
		return w.unparkEvery
	})
}

// unpark makes due the parked first messages of the next webhookUnparkUsers users with
// a message pending at each endpoint that may hold one (store.ParkedEndpoints,
// store.UnparkHeads), going on after the user after holds for it. An endpoint whose
// sweep fails is left for the next sweep, and the others are swept; the failures are
// logged once.
func (w *webhooker) unpark(ctx context.Context, after map[[2]string]string) {
	eps, firstErr := w.store.ParkedEndpoints(ctx, w.claimable)
	failed := 0
	for _, e := range eps {
		made, last, err := w.store.UnparkHeads(ctx, e, after[e], webhookUnparkUsers)
		if err != nil {
			if failed++; firstErr == nil {
				firstErr = err
			}
			continue
		}
		after[e] = last
		if len(made) > 0 {
			w.metrics.unparked.WithLabelValues(e[0]).Add(float64(len(made)))
			w.log.Warn("webhooks: made due messages first in their user's line that waited parked; their turn came unseen",
				"property", e[0], "url", e[1], "count", len(made), "deliveries", made[:min(len(made), 20)])
		}
	}
	if firstErr != nil && ctx.Err() == nil {
		w.log.Error("webhooks: sweeping for parked messages failed; retrying at the next sweep", "endpoints_failed", failed, "err", firstErr)
	}
}

// runLane delivers the deliveries of endpoints until ctx ends: a pass when woken, then
// the next at once while a pass claimed any (after 5 × webhookPoll when one failed). A
// pass waits for one of the process's slots before it claims, so the wait does not eat
// into its lease: one of webhookLanes (as a long pass after a pass that gave its slot
// up before it ended or sent a whole batch, else as a short one; slotPool), or of
// webhookSlowLanes once webhookLateToSlow passes in a row had a late send, until as
// many in a row send in time (slowAfter). A pass in a webhookLanes slot gives it back
// after webhookStall, or at its first late send, and finishes its sends in flight
// without one.
func (a *App) runLane(ctx context.Context, endpoints [][2]string, wake <-chan struct{}) {
	w := a.webhooks
	slow := false
	run := 0 // passes in a row that point to the other slots (slowAfter)
	for {
		select {
		case <-ctx.Done():
			return
		case <-wake:
		}
		long := false // the last pass gave its slot up before it ended
		for {
			var once sync.Once
			var release func()
			if slow {
				select {
				case <-ctx.Done():
					return
				case w.slow <- struct{}{}:
				}
				release = func() { once.Do(func() { <-w.slow }) }
			} else {
				if !w.lanes.acquire(ctx, long) {
					return
				}
				asked := long
				release = func() { once.Do(func() { w.lanes.release(asked) }) }
			}
			done := release
			if slow {
				done = func() {} // the slow slots bound the endpoints that hang or crawl
			}
			n, late, stopped, err := a.safePass(ctx, endpoints, done)
			release()
			long = longAfter(n, stopped)
			if ctx.Err() != nil {
				return
			}
			var now bool
			run, now = slowAfter(run, slow, late, n)
			if now != slow {
				if now {
					w.log.Warn("webhooks: endpoint answers late or not at all; its deliveries go out in the slow lanes until it answers in time",
						"endpoint", endpoints[0][1], "property", endpoints[0][0])
				} else {
					w.log.Info("webhooks: endpoint answering again", "endpoint", endpoints[0][1], "property", endpoints[0][0])
				}
				slow = now
			}
			if err != nil {
				w.log.Error("webhooks: pass failed; retrying", "endpoint", endpoints[0][1], "err", err)
				select {
				case <-ctx.Done():
					return
				case <-time.After(5 * webhookPoll):
				}
				continue
			}
			if n == 0 {
				break
			}
			// More may be due: a pass claims one delivery per user, so a user's next
			// message becomes claimable only once the previous one is sent. Waiting a
			// poll here held each user to one message a second.
		}
	}
}

// pruneWebhooks runs PruneWebhookDeliveries and logs its outcome; a failure waits for the
// next round.
func (a *App) pruneWebhooks(ctx context.Context) {
	n, err := a.PruneWebhookDeliveries(ctx)
	switch {
	case err != nil && ctx.Err() == nil:
		a.log.Error("webhooks: removing old deliveries failed; trying again later", "err", err)
	case n > 0:
		a.log.Info("webhooks: removed delivered deliveries older than the retention", "deliveries", n, "retention", WebhookRetention.String())
	}
}

// PruneWebhookDeliveries removes the deliveries delivered more than WebhookRetention ago,
// a batch at a time, up to webhookPruneRounds batches, and returns how many. `tally
// serve` runs it every hour.
func (a *App) PruneWebhookDeliveries(ctx context.Context) (int64, error) {
	st := a.webhooks.store
	before := st.Now().Add(-WebhookRetention)
	var total int64
	for range webhookPruneRounds {
		n, err := st.PruneDeliveries(ctx, before, webhookPruneBatch)
		total += n
		if err != nil || n < webhookPruneBatch {
			return total, err
		}
	}
	return total, nil
}

// safePass is one pass over endpoints whose panic is logged and turned into an error,
// so the lane carries on.
func (a *App) safePass(ctx context.Context, endpoints [][2]string, done func()) (n int, late, stopped bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			a.log.Error("webhooks: pass panicked; recovered", "panic", r, "stack", string(debug.Stack()))
			n, late, stopped, err = 0, false, false, fmt.Errorf("webhook pass panicked: %v", r)
		}
	}()
	return a.webhooks.pass(ctx, endpoints, webhookStall, done)
}

// DeliverWebhooks runs one pass over every endpoint: it claims the due deliveries, sends
// them, records each outcome, and returns how many it sent. A pass already running in
// this process makes it return 0 at once. Tests call it by hand; `tally serve` runs
// RunWebhooks, a lane per endpoint.
func (a *App) DeliverWebhooks(ctx context.Context) (int, error) {
	w := a.webhooks
	if !w.running.TryLock() {
		return 0, nil
	}
	defer w.running.Unlock()
	n, _, _, err := w.pass(ctx, w.claimable, 0, func() {})
	return n, err
}

// pass claims the due deliveries of endpoints (at most webhookBatch), sends them
// webhookParallel at a time, and records each outcome. Once budget has passed (0: no
// limit) or a send is late, it calls done, starts no more sends, and gives back what
// it did not send; late reports whether a send was, stopped whether it stopped so.
func (w *webhooker) pass(ctx context.Context, endpoints [][2]string, budget time.Duration, done func()) (n int, late, stopped bool, err error) {
	ds, err := w.store.ClaimDeliveriesFor(ctx, w.holder, webhookBatch, w.lease, endpoints)
	if err != nil || len(ds) == 0 {
		return 0, false, false, err
	}
	stall := make(chan struct{})
	var once sync.Once
	stop := func() {
		once.Do(func() {
			close(stall)
			done()
		})
	}
	if budget > 0 {
		spent := time.AfterFunc(budget, stop)
		defer spent.Stop()
	}
	var lateSend atomic.Bool
	isLate := func() {
		lateSend.Store(true)
		stop()
	}
	sem := make(chan struct{}, webhookParallel)
	var wg sync.WaitGroup
	errs := make([]error, len(ds))
	var unsent []int64
	for i, d := range ds {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		case <-stall:
		}
		if ctx.Err() != nil || closed(stall) {
			// Stopping, or the pass's time is up or the endpoint is late: what is in
			// flight finishes and is recorded (deliver); what is not sent yet is given
			// back, not left leased to a process that is gone or held behind sends that
			// hang.
			unsent = append(unsent, d.ID)
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = w.deliver(ctx, d, isLate)
		})
	}
	wg.Wait()
	if len(unsent) > 0 {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordLimit)
		defer cancel()
		if err := w.store.ReleaseDeliveries(rctx, w.holder, unsent); err != nil {
			errs = append(errs, fmt.Errorf("webhooks: give back %d unsent deliveries: %w", len(unsent), err))
		}
	}
	return len(ds) - len(unsent), lateSend.Load(), closed(stall), errors.Join(errs...)
}

// closed reports whether ch is closed, without waiting.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// deliver sends d once and records the outcome; it calls late when the send has no
// answer within webhookStall, or ends without one. A panic is logged and recorded
// nowhere: the lease lapses and the delivery is tried again.
func (w *webhooker) deliver(ctx context.Context, d rewards.Delivery, late func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			w.log.Error("webhooks: panic while delivering", "delivery", d.ID, "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("webhook delivery %d panicked: %v", d.ID, r)
		}
	}()
	at := rewards.DeliveryAttempt{ID: d.ID, Holder: w.holder, Step: d.Step, Due: d.NextAttemptAt, DisableAfter: webhookDisableAfter}
	ep, ok := w.endpoints[endpointKey{d.Property, d.Endpoint}]
	if !ok {
		// Not reached: the store claims only the deliveries of configured endpoints, and
		// leaves an unconfigured one's pending (README "Webhooks"). Kept so a claim that
		// ever returns one fails it visibly rather than panics.
		at.Error = "endpoint no longer configured for this property"
	} else {
		// Not cut short when the worker stops: the endpoint may have taken the message
		// already, and a cut send was neither recorded nor given back, so it waited
		// for its lease and went again. The client's timeout bounds it.
		timer := time.AfterFunc(webhookStall, late)
		at.Status, at.Error = w.send(context.WithoutCancel(ctx), ep, d)
		timer.Stop()
		if at.Status == 0 {
			late()
		}
		at.OK = at.Error == ""
		if !at.OK {
			at.RetryIn = retryIn(d.Step)
		}
	}
	// Recorded even when ctx ends meanwhile: the attempt happened.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordLimit)
	defer cancel()
	recorded, disabled, err := w.store.RecordAttempt(rctx, at)
	if recorded { // not an attempt whose lease another worker took: that one counts its own
		outcome := "delivered"
		if !at.OK {
			outcome = "failed"
		}
		w.metrics.webhooks.WithLabelValues(d.Property, outcome).Inc()
	}
	if err != nil {
		return fmt.Errorf("webhook delivery %d: record attempt: %w", d.ID, err)
	}
	if disabled {
		w.metrics.disabled.WithLabelValues(d.Property).Inc()
		w.log.Error("webhooks: endpoint disabled: no success for 5 days; retry a delivery to enable it again",
			"property", d.Property, "url", d.Endpoint)
	}
	return nil
}

// send POSTs d to its endpoint and returns the HTTP status and, for a failure, why.
// Only a 2xx within the client's timeout is a success.
func (w *webhooker) send(ctx context.Context, ep endpoint, d rewards.Delivery) (int, string) {
	status, msg := w.post(ctx, ep, d)
	return status, attemptError(msg)
}

// maxAttemptError is the most of an attempt's error text kept, in characters.
const maxAttemptError = 500

// attemptError is an attempt's error text as it can be stored: valid UTF-8 without
// control characters, at most maxAttemptError characters. It quotes the endpoint's own
// reason phrase and Location, which may be Latin-1 or anything: Postgres refused such
// text, the attempt was never recorded, and the delivery was sent again every lease,
// never failing, holding back the user's later messages for good.
func attemptError(msg string) string {
	msg = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(msg, "\uFFFD"))
	if utf8.RuneCountInString(msg) > maxAttemptError {
		msg = string([]rune(msg)[:maxAttemptError-1]) + "…"
	}
	return msg
}

// post sends one attempt of d to ep.
func (w *webhooker) post(ctx context.Context, ep endpoint, d rewards.Delivery) (int, string) {
	id := "msg_" + strconv.FormatInt(d.ID, 10)
	ts := w.store.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.Endpoint, bytes.NewReader(d.Body))
	if err != nil {
		return 0, "bad endpoint url: " + err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Tally-Webhooks/1")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set("webhook-signature", signWebhook(ep.keys, id, ts, d.Body))
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	// The status is the answer. Up to 64 KB of body read within answerDrain lets the
	// connection be reused; a body slower than that is cut (the connection with it).
	cut := time.AfterFunc(answerDrain, cancel)
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	cut.Stop()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		msg := "answered " + resp.Status
		if loc := resp.Header.Get("Location"); loc != "" && resp.StatusCode >= 300 && resp.StatusCode < 400 {
			msg += " (redirect to " + loc + ", not followed)"
		}
		return resp.StatusCode, msg
	}
	return resp.StatusCode, ""
}

// WebhookDeliveries lists deliveries newest first.
func (a *App) WebhookDeliveries(ctx context.Context, f rewards.DeliveryFilter) ([]rewards.Delivery, error) {
	switch f.Status {
	case "", rewards.DeliveryPending, rewards.DeliveryDelivered, rewards.DeliveryFailed:
	default:
		return nil, invalid("status", "must be pending, delivered or failed")
	}
	return a.webhooks.store.Deliveries(ctx, f)
}

// RetryWebhook makes a delivery due now with its retry schedule started over, and
// enables its endpoint again if it was disabled. actor is logged.
func (a *App) RetryWebhook(ctx context.Context, id int64, actor string) (rewards.Delivery, error) {
	if actor == "" {
		return rewards.Delivery{}, ErrUnauthorized
	}
	// The store records the retry in the audit log, in its own transaction.
	return a.webhooks.store.RetryDelivery(ctx, id, actor)
}
