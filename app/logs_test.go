package app_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"tally/app"
	"tally/store"
)

// lockedBuffer is a log sink shared by the server's goroutines and the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lines decodes the JSON log lines written so far.
func (l *lockedBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(l.String()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// loggedEnv is newEnv on db with a JSON logger the test can read.
func loggedEnv(t *testing.T, db *store.DB) (*env, *lockedBuffer) {
	t.Helper()
	logs := &lockedBuffer{}
	a := app.New(db, app.Options{Properties: []app.Property{arcade(), other()}, AdminToken: adminTok, IngestWorkers: 2,
		Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	t.Cleanup(a.Close)
	return &env{t: t, db: db, app: a, h: a.Handler()}, logs
}
