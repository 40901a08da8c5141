package store_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tally/rewards"
	"tally/store"
	"tally/store/storetest"
)

// commitCutter is a TCP proxy to Postgres that, once armed, forwards the next COMMIT a
// client sends and then closes that client's side, so the server commits and its answer
// never arrives: what a connection lost at the wrong moment does.
type commitCutter struct {
	ln     net.Listener
	target string
	armed  atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
}

func newCommitCutter(t *testing.T, target string) *commitCutter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &commitCutter{ln: ln, target: target}
	go p.serve()
	t.Cleanup(p.stop)
	return p
}

// stop closes the proxy and every connection through it: the database behind it is
// gone, as far as its clients can tell.
func (p *commitCutter) stop() {
	_ = p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
}

func (p *commitCutter) serve() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, client, server)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(client, server); _ = client.Close() }()
		go p.forward(client, server)
	}
}

func (p *commitCutter) forward(client, server net.Conn) {
	buf := make([]byte, 64<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			cut := bytes.Contains(bytes.ToLower(buf[:n]), []byte("commit\x00")) && p.armed.CompareAndSwap(true, false) // the statement, not "begin isolation level read committed"
			if _, werr := server.Write(buf[:n]); werr != nil {
				return
			}
			if cut {
				_ = client.Close() // the server has the COMMIT; its answer goes nowhere
				return
			}
		}
		if err != nil {
			_ = server.Close()
			return
		}
	}
}

// A commit whose answer is lost (the connection breaks after COMMIT reached the server)
// is "outcome unknown", never "nothing was saved": here it did commit, and the retry
// with the same key answers that redemption. Before, pgx reported the lost answer as
// "conn closed", taken for a commit never sent, and the publisher was told to retry a
// redemption that had debited the user (under a new key it paid twice).
func TestLostCommitAnswerIsOutcomeUnknown(t *testing.T) {
	ctx := context.Background()
	direct := storetest.URL(t, store.Postgres)
	u, err := url.Parse(direct)
	if err != nil {
		t.Fatal(err)
	}
	cutter := newCommitCutter(t, u.Host)
	u.Host = cutter.ln.Addr().String()
	db := storetest.OpenURL(t, u.String(), storetest.NewClock(t0).Now)
	fund(t, db, "u1", "100")

	cutter.armed.Store(true)
	_, _, err = db.Redeem(ctx, redeemReq("u1", "30", "k1"))
	if !errors.Is(err, rewards.ErrOutcomeUnknown) {
		t.Fatalf("redeem whose commit answer was lost: %v, want outcome unknown", err)
	}
	// The server committed it: the same key answers that redemption, once.
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, replayed, err := db.Redeem(ctx, redeemReq("u1", "30", "k1"))
		if err == nil && replayed && r.Balance.Available.Equal(d("70")) {
			break
		}
		if err == nil && !replayed {
			t.Fatalf("the retry redeemed again: %+v; the first had committed", r)
		}
		if time.Now().After(deadline) {
			t.Fatalf("retry: %+v %v %v", r, replayed, err)
		}
	}
	wantBalance(t, db, "u1", "0", "70")
}
