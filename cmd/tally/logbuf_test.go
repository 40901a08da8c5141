package main

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe to write from the flusher and read from the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls until the output holds want (the flusher runs every 100 ms).
func waitFor(t *testing.T, out *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("log output never held %q; it holds %q", want, out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Request lines are written in batches; a warning goes out at once, with the lines
// before it, and shutdown writes out the rest.
func TestBufferedLogger(t *testing.T) {
	out := &syncBuffer{}
	log, buf := newBufferedLogger(out)
	log.Info("request", "route", "/a")
	log.With("request_id", "r1").Warn("slow", "route", "/b")
	if got := out.String(); !strings.Contains(got, `"route":"/a"`) || !strings.Contains(got, `"request_id":"r1"`) {
		t.Fatalf("after a warning the output is %q; want both lines", got)
	}
	log.Info("request", "route", "/c")
	waitFor(t, out, `"route":"/c"`) // the timer writes it out
	log.Info("request", "route", "/d")
	if err := buf.Close(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.Contains(got, `"route":"/d"`) || strings.Count(got, "\n") != 4 {
		t.Fatalf("after close the output is %q; want four lines", got)
	}
}
