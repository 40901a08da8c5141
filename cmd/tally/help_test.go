package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// -h and --help print the command's help and succeed, running nothing: no config is
// read, no database is opened or created, no server starts, no settlement runs.
func TestHelpTouchesNothing(t *testing.T) {
	cfg, err := filepath.Abs("../../tally.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	commands := [][]string{
		{"serve"}, {"migrate"}, {"settle"}, {"replay"}, {"check"}, {"verify"}, {"export", "payouts"}, {"export"},
		{"settle", "--property", "arcade"}, {"serve", "--config", cfg}, {"sub", "sign"}, {"trueup", "import"}, {"trueup", "run"},
		{"sub"}, {"trueup"}, // their usage, on stderr like every command's flags
	}
	// An already-cancelled context: a command that wrongly went on would still create the
	// database's directory before it noticed (and serve would return instead of blocking).
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, cmd := range commands {
		for _, help := range []string{"-h", "--help", "-help"} {
			args := append(append([]string{}, cmd...), help)
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				dir := t.TempDir()
				genv := getenv(map[string]string{
					"TALLY_CONFIG":       cfg,
					"TALLY_DATABASE_URL": "sqlite://" + filepath.Join(dir, "data", "tally.db"),
				})
				var stdout, stderr bytes.Buffer
				if err := run(ctx, args, genv, &stdout, &stderr); err != nil {
					t.Fatalf("err = %v\n%s", err, stderr.String())
				}
				if want := map[bool]string{true: "usage:", false: "-config"}[len(cmd) == 1 && (cmd[0] == "sub" || cmd[0] == "trueup")]; !strings.Contains(stderr.String(), want) {
					t.Errorf("no help printed:\n%s", stderr.String())
				}
				if stdout.Len() != 0 {
					t.Errorf("the command ran: stdout %q", stdout.String())
				}
				if entries, _ := os.ReadDir(dir); len(entries) != 0 {
					t.Errorf("the command touched the database: %v", entries)
				}
			})
		}
	}
}
