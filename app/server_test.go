package app_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"tally/app"
)

// A request still running when the drain at shutdown ends is cut, and Serve says so, in
// its log and its error: it returned a bare "context deadline exceeded", logged nothing
// of it, and left the connection to the process's exit.
func TestServeCutsWhatOutlastsTheDrain(t *testing.T) {
	defer app.SetDrainTimeout(50 * time.Millisecond)()
	entered, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { close(entered); <-release })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- app.Serve(ctx, ln, h, slog.New(slog.NewJSONHandler(&logs, nil))) }()
	answered := make(chan error, 1)
	go func() {
		res, err := http.Get("http://" + ln.Addr().String() + "/slow")
		if err == nil {
			res.Body.Close()
		}
		answered <- err
	}()
	<-entered
	cancel()
	if err := <-served; err == nil || !strings.Contains(err.Error(), "requests still in flight after 50ms were cut") {
		t.Fatalf("Serve after a drain that ran out: %v", err)
	}
	if !strings.Contains(logs.String(), "requests still in flight after the drain; closing their connections") {
		t.Fatalf("log:\n%s", logs.String())
	}
	select {
	case err := <-answered:
		if err == nil {
			t.Fatal("the cut request was answered")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the cut request's connection was left open")
	}
}
