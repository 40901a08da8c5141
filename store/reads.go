package store

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"tally/rewards"
)

// The publisher's hot reads (a balance, a page of transactions, a page of the balance
// feed) run on Postgres through a pgx pool of their own rather than through gorm and
// database/sql. They are single statements with no transaction, and database/sql costs
// them a goroutine per query (it watches the context of every Rows) and gorm's
// statement machinery on top: together more CPU than Postgres spends on the lookup.
// The pool is small: on a few cores a handful of connections already keeps Postgres
// busy, and requests beyond that wait in the pool, not in Postgres's scheduler.
//
// Balances, the most polled read, are read in batches (balanceReader): the balance
// requests that arrive while a read is in flight are answered together by the next one,
// as the receivers' group commit does for writes. Each request is answered by a
// statement that started after the request arrived, so it sees every write committed
// before it: no cache stands between a balance and the wallet row.

// Read pool and batch sizes.
const (
	// balanceReaders is how many balance statements run at once. One is best: while
	// it runs, the next batch gathers, so batches grow with the load and Postgres sees
	// one statement per batch, not one per request (measured at 16 connections over
	// HTTP: 11,000–13,000 req/s with one reader, 7,600–11,500 with two, 8,300 with
	// four). Each batch is a few index lookups per wallet, bounded by balanceBatch.
	balanceReaders = 1
	// balanceBatch bounds the wallets one balance statement reads.
	balanceBatch = 256
	// pageReaders is how many pages of transactions or of the feed are read at once.
	pageReaders = 4
	// readPoolSize is the read pool's connections: one per balance reader and one per
	// page reader, so pages never hold up balances.
	readPoolSize = balanceReaders + pageReaders
	// balanceTimeout bounds one balance statement.
	balanceTimeout = 10 * time.Second
)

// pageSlot waits until fewer than pageReaders page reads hold a read connection, so the
// balance readers always find theirs; call the release it returns when done.
func (db *DB) pageSlot(ctx context.Context) (release func(), err error) {
	select {
	case db.pages <- struct{}{}:
		return func() { <-db.pages }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// readPage runs a page read (`?` placeholders): on the read pool holding a page slot,
// scan reading each row; without a read pool (SQLite) through gorm, by column name.
func readPage[T any](ctx context.Context, db *DB, q string, args []any, scan func(pgx.Rows, *T) error) ([]T, error) {
	var out []T
	if db.reads == nil {
		err := query(db.gorm.WithContext(ctx), &out, q, args...)
		return out, err
	}
	release, err := db.pageSlot(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	rows, err := db.reads.Query(ctx, numbered(q), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var r T
		if err := scan(rows, &r); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// walletAmounts scans a wallet's five amounts (walletColumns' order) through
// decimalColumn: pgx's numerics, or the text a statement cast them to (the feed's).
type walletAmounts [5]decimalColumn

func (m *walletAmounts) dest() []any { return []any{&m[0], &m[1], &m[2], &m[3], &m[4]} }

// valid reports whether every amount was a number (the columns are NOT NULL).
func (m *walletAmounts) valid() bool {
	for _, c := range m {
		if !c.Valid {
			return false
		}
	}
	return true
}

// into sets the amounts of w.
func (m *walletAmounts) into(w *rewards.Wallet) {
	w.Pending, w.Available, w.Carry, w.Redeemed, w.LifetimeEarned = m[0].Decimal, m[1].Decimal, m[2].Decimal, m[3].Decimal, m[4].Decimal
}

// openReplicaProbe opens Ready's one connection to the read replica dsn.
func openReplicaProbe(ctx context.Context, dsn string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("store: read replica probe: %w", err)
	}
	cfg.MaxConns, cfg.MinConns = 1, 0
	return pgxpool.NewWithConfig(ctx, cfg)
}

// openReadPool connects the read pool to dsn (a postgres:// URL).
func openReadPool(ctx context.Context, dsn string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("store: read pool: %w", err)
	}
	cfg.MaxConns = readPoolSize
	// The same statement shapes run again and again: pgx prepares each once per
	// connection and keeps it (its default statement cache), as pgbench -M prepared does.
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheStatement
	return pgxpool.NewWithConfig(ctx, cfg)
}

// balanceReader answers balance requests in batches on the read pool.
type balanceReader struct {
	pool *pgxpool.Pool
	asks chan *balanceAsk
	stop chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

type balanceAsk struct {
	ctx            context.Context
	property, user string
	reply          chan balanceReply // buffered: a reader never waits for the asker
}

type balanceReply struct {
	b   rewards.Balance
	err error
}

func newBalanceReader(pool *pgxpool.Pool) *balanceReader {
	r := &balanceReader{pool: pool, asks: make(chan *balanceAsk), stop: make(chan struct{})}
	for range balanceReaders {
		r.wg.Go(r.run)
	}
	return r
}

// close stops the readers; a request still waiting is answered ErrUnavailable.
func (r *balanceReader) close() {
	r.once.Do(func() { close(r.stop) })
	r.wg.Wait()
}

var errReadsClosed = fmt.Errorf("store: closed: %w", rewards.ErrUnavailable)

// balance reads one wallet, with the others asked for at the same time.
func (r *balanceReader) balance(ctx context.Context, property, user string) (rewards.Balance, error) {
	a := &balanceAsk{ctx: ctx, property: property, user: user, reply: make(chan balanceReply, 1)}
	select {
	case r.asks <- a:
	case <-r.stop:
		return rewards.Balance{}, errReadsClosed
	case <-ctx.Done():
		return rewards.Balance{}, translate(ctx.Err())
	}
	select {
	case rep := <-a.reply:
		return rep.b, rep.err
	case <-ctx.Done():
		return rewards.Balance{}, translate(ctx.Err())
	}
}

// run takes the first request that comes, with every other one already waiting (up to
// balanceBatch), and answers them with one statement.
func (r *balanceReader) run() {
	batch := make([]*balanceAsk, 0, balanceBatch)
	for {
		select {
		case <-r.stop:
			return
		case a := <-r.asks:
			batch = gather(append(batch[:0], a), r.asks, balanceBatch)
		}
		r.answer(batch)
		clear(batch) // let the answered requests go
	}
}

// balanceOneSQL reads a wallet and, in the same round trip, its earliest unsettled lot:
// the first entry of the wallet's range in lots_wallet (wallet_id, matures_at), a partial
// index of unsettled lots only, whose lot is read to skip a pending debit (a negative
// lot), so usually one lot is read whatever the wallet holds; balanceManySQL does the same
// for the wallets of two parallel arrays of properties and users.
const (
	balanceColumns = `w.property, w.user_id, w.pending, w.available, w.carry, w.redeemed, w.lifetime_earned, w.updated_at,
	(SELECT min(l.matures_at) FROM lots l WHERE l.wallet_id = w.id AND l.settlement_id IS NULL AND l.amount > 0)`
	balanceOneSQL  = `SELECT ` + balanceColumns + ` FROM wallets w WHERE w.property = $1 AND w.user_id = $2`
	balanceManySQL = `SELECT ` + balanceColumns + ` FROM unnest($1::text[], $2::text[]) AS k (property, user_id)
	JOIN wallets w ON w.property = k.property AND w.user_id = k.user_id`
)

func (r *balanceReader) answer(batch []*balanceAsk) {
	// A request whose caller has gone is not read.
	live := batch[:0]
	for _, a := range batch {
		if a.ctx.Err() == nil {
			live = append(live, a)
		}
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), balanceTimeout)
	defer cancel()
	var rows pgx.Rows
	var err error
	if len(live) == 1 {
		rows, err = r.pool.Query(ctx, balanceOneSQL, live[0].property, live[0].user)
	} else {
		props, users := make([]string, len(live)), make([]string, len(live))
		for i, a := range live {
			props[i], users[i] = a.property, a.user
		}
		rows, err = r.pool.Query(ctx, balanceManySQL, props, users)
	}
	found := make(map[walletKey]rewards.Balance, len(live))
	if err == nil {
		for rows.Next() {
			var w wallet
			var next *time.Time
			var m walletAmounts
			if err = rows.Scan(append(append([]any{&w.Property, &w.UserID}, m.dest()...), &w.UpdatedAt, &next)...); err != nil {
				break
			}
			m.into(&w.Wallet)
			b := toBalance(w)
			if next != nil {
				b.NextAvailableAt = next.UTC()
			}
			found[walletKey{w.Property, w.UserID}] = b
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
	}
	for _, a := range live {
		if err != nil {
			a.reply <- balanceReply{err: translate(err)}
			continue
		}
		b, ok := found[walletKey{a.property, a.user}]
		if !ok { // no wallet yet: nothing earned
			b = rewards.Balance{Property: a.property, User: a.user}
		}
		a.reply <- balanceReply{b: b}
	}
}
