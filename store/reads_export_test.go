package store

import (
	"context"

	"tally/rewards"
)

// BalanceBatchReply is one answer of BalanceBatch; Answered is false for a request the
// batch did not answer (its caller had gone).
type BalanceBatchReply struct {
	Balance  rewards.Balance
	Err      error
	Answered bool
}

// BalanceBatch answers the (property, user) pairs asked, each with its context, in one
// batch as a balance reader does (Postgres only).
func (db *DB) BalanceBatch(ctxs []context.Context, keys [][2]string) []BalanceBatchReply {
	asks := make([]*balanceAsk, len(keys))
	for i, k := range keys {
		asks[i] = &balanceAsk{ctx: ctxs[i], property: k[0], user: k[1], reply: make(chan balanceReply, 1)}
	}
	db.balances.answer(append([]*balanceAsk(nil), asks...))
	out := make([]BalanceBatchReply, len(asks))
	for i, a := range asks {
		select {
		case r := <-a.reply:
			out[i] = BalanceBatchReply{Balance: r.b, Err: r.err, Answered: true}
		default:
		}
	}
	return out
}
