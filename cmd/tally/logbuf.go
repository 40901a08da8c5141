package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// logFlushEvery is how long a log line of `tally serve` may wait in its buffer.
const logFlushEvery = 100 * time.Millisecond

// logBuffer batches the log lines of `tally serve`: the one line per request is written
// with the others of the same tenth of a second in one system call, not one each (on a
// busy replica that call cost more than the request's own database read). Lines at
// warning level and above, and everything at shutdown, are written at once; after Close
// every line goes straight through. A process that dies without shutting down can lose
// the last tenth of a second of lines.
type logBuffer struct {
	mu     sync.Mutex
	out    io.Writer
	w      *bufio.Writer
	closed bool
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

func newLogBuffer(w io.Writer, every time.Duration) *logBuffer {
	b := &logBuffer{out: w, w: bufio.NewWriterSize(w, 64<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go b.flushEvery(every)
	return b
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return b.out.Write(p)
	}
	n, err := b.w.Write(p)
	if err != nil {
		// bufio keeps a write error for good; a log that failed once (a full disk)
		// must not stay silent after the disk has room again.
		b.w.Reset(b.out)
	}
	return n, err
}

// Flush writes out what is buffered.
func (b *logBuffer) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	err := b.w.Flush()
	if err != nil {
		b.w.Reset(b.out) // those lines are lost; the next ones are tried afresh
	}
	return err
}

func (b *logBuffer) flushEvery(d time.Duration) {
	defer close(b.done)
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			_ = b.Flush()
		case <-b.stop:
			return
		}
	}
}

// Close stops the timer and writes out the rest; later lines are written at once.
func (b *logBuffer) Close() error {
	b.once.Do(func() { close(b.stop) })
	<-b.done
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return b.w.Flush()
}

// flushingHandler writes a record at warning level or above out of the buffer at once.
type flushingHandler struct {
	slog.Handler
	buf *logBuffer
}

func (h flushingHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		_ = h.buf.Flush()
	}
	return err
}

func (h flushingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return flushingHandler{h.Handler.WithAttrs(as), h.buf}
}

func (h flushingHandler) WithGroup(name string) slog.Handler {
	return flushingHandler{h.Handler.WithGroup(name), h.buf}
}

// newBufferedLogger is newLogger writing through a logBuffer flushed every interval;
// close the buffer last.
func newBufferedLogger(w io.Writer, every time.Duration) (*slog.Logger, *logBuffer) {
	buf := newLogBuffer(w, every)
	return slog.New(flushingHandler{newLogger(buf).Handler(), buf}), buf
}
