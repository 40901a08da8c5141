package main

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe to write from the flusher and read from the test;
// it refuses writes while failing is set.
type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	failing bool
	wrote   chan struct{} // signalled after each write, when not nil
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failing {
		return 0, errors.New("disk full")
	}
	n, err := s.b.Write(p)
	if s.wrote != nil {
		select {
		case s.wrote <- struct{}{}:
		default:
		}
	}
	return n, err
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) fail(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failing = on
}

// Info lines wait for the timer; a warning goes out at once with the lines before it;
// shutdown writes out the rest, and lines after it go straight through.
func TestBufferedLogger(t *testing.T) {
	out := &syncBuffer{}
	log, buf := newBufferedLogger(out, time.Hour) // the timer never fires in this test
	log.Info("request", "route", "/a")
	if got := out.String(); got != "" {
		t.Fatalf("an info line was written before the flush: %q", got)
	}
	log.With("request_id", "r1").Warn("slow", "route", "/b")
	if got := out.String(); !strings.Contains(got, `"route":"/a"`) || !strings.Contains(got, `"request_id":"r1"`) {
		t.Fatalf("after a warning the output is %q; want both lines", got)
	}
	log.Info("request", "route", "/c")
	if err := buf.Close(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.Contains(got, `"route":"/c"`) {
		t.Fatalf("after close the output is %q; want the buffered line", got)
	}
	log.Info("request", "route", "/d") // a handler still running after shutdown
	if got := out.String(); !strings.Contains(got, `"route":"/d"`) || strings.Count(got, "\n") != 4 {
		t.Fatalf("a line after close: output %q; want four lines", got)
	}
	if err := buf.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
}

// The timer writes out what waits.
func TestBufferedLoggerTimer(t *testing.T) {
	out := &syncBuffer{wrote: make(chan struct{}, 1)}
	log, buf := newBufferedLogger(out, time.Millisecond)
	defer buf.Close()
	log.Info("request", "route", "/a")
	select {
	case <-out.wrote:
	case <-time.After(10 * time.Second):
		t.Fatal("the timer never wrote the line out")
	}
	if got := out.String(); !strings.Contains(got, `"route":"/a"`) {
		t.Fatalf("the timer wrote %q; want the line", got)
	}
}

// A failed write loses what was buffered then, not every line after it.
func TestBufferedLoggerRecoversFromAWriteError(t *testing.T) {
	out := &syncBuffer{}
	log, buf := newBufferedLogger(out, time.Hour)
	out.fail(true)
	log.Warn("lost", "n", 1)
	out.fail(false)
	log.Warn("kept", "n", 2)
	if got := out.String(); !strings.Contains(got, `"msg":"kept"`) {
		t.Fatalf("after the disk recovered the output is %q; want the next line", got)
	}
	if err := buf.Close(); err != nil {
		t.Fatal(err)
	}
}
