package main

import (
	"bytes"
	"context"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// tally check against a Postgres address that accepts connections and never answers (a
// black-holing firewall) gives up within its bound and says the ledger was not checked.
// It hung: gorm pinged on opening, with no deadline.
func TestCheckWithASilentDatabase(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		held []net.Conn
	)
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			_ = c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // accepted, never answered
			mu.Unlock()
		}
	}()
	cfg, err := filepath.Abs("../../tally.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	genv := getenv(map[string]string{"TALLY_DATABASE_URL": "postgres://postgres@" + ln.Addr().String() + "/x?sslmode=disable"})
	var out bytes.Buffer
	if err := run(context.Background(), []string{"check", "--config", cfg}, genv, &out, &out); err != nil ||
		!strings.Contains(out.String(), "config OK; ledger not checked: ") {
		t.Fatalf("%v\n%s", err, out.String())
	}
}
