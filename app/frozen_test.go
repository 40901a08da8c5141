package app_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"tally/app"
	"tally/store"
	"tally/store/storetest"
)

// freezer is a TCP proxy to Postgres that can stop forwarding: the database accepts
// connections but never answers, as a hung server or a dead network path does.
type freezer struct {
	ln      net.Listener
	mu      sync.Mutex
	frozen  bool
	thawed  chan struct{}
	target  string
	closing chan struct{}
}

func newFreezer(t *testing.T, target string) *freezer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, target: target, thawed: make(chan struct{}), closing: make(chan struct{})}
	close(f.thawed)
	t.Cleanup(func() { close(f.closing); ln.Close() })
	go f.serve()
	return f
}

func (f *freezer) serve() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			up, err := net.Dial("tcp", f.target)
			if err != nil {
				c.Close()
				return
			}
			go f.pipe(up, c)
			f.pipe(c, up)
		}()
	}
}

// pipe copies src to dst, holding every chunk while the proxy is frozen.
func (f *freezer) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			f.mu.Lock()
			thawed := f.thawed
			f.mu.Unlock()
			select {
			case <-thawed:
			case <-f.closing:
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (f *freezer) freeze() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.frozen {
		f.frozen, f.thawed = true, make(chan struct{})
	}
}

func (f *freezer) thaw() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.frozen {
		f.frozen = false
		close(f.thawed)
	}
}

// A database that stops answering (connections open, nothing comes back) does not hold
// deliveries: every one of several concurrent requests gets a 503 with Retry-After within
// the receive deadline, not after a pool or commit timeout of 15–60 s; once the database
// answers again, deliveries are accepted.
func TestFrozenDatabaseAnswers503Promptly(t *testing.T) {
	u, err := url.Parse(storetest.URL(t, store.Postgres))
	if err != nil {
		t.Fatal(err)
	}
	f := newFreezer(t, u.Host)
	u.Host = f.ln.Addr().String()
	db := storetest.OpenURL(t, u.String(), nil)
	a := app.New(db, app.Options{Properties: []app.Property{arcade()}, AdminToken: adminTok, IngestWorkers: 2})
	t.Cleanup(a.Close)
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	// The client's timeout is a hang detector, not a timing assertion: the deadline is
	// 4.5 s; the old code took 15 s per attempt.
	client := &http.Client{Timeout: 10 * time.Second}
	post := func(session string) (*http.Response, error) {
		body := strings.Replace(sppBody, "b48a8368-a369-49a4-b427-2d5891ef3763", session, 1)
		req, _ := http.NewRequest("POST", srv.URL+"/v1/hooks/arcade/gamezop/spp", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+sppToken)
		return client.Do(req)
	}
	if resp, err := post("before"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("before the freeze: %v %v", resp, err)
	}

	f.freeze()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := post("frozen-" + string(rune('a'+i)))
			if err != nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
				t.Errorf("request %d: %v %v, want 503 with Retry-After", i, resp, err)
			}
		}()
	}
	wg.Wait()

	f.thaw()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		resp, err := post("after")
		if err == nil && resp.StatusCode == 200 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("after the thaw: %v %v", resp, err)
		}
	}
}
