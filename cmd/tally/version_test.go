package main

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"tally/app"
)

func TestResolveBuild(t *testing.T) {
	info := &debug.BuildInfo{GoVersion: "go1.99.1", Main: debug.Module{Version: "v0.0.0-20261101000000-0123456789ab+dirty"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef"}, {Key: "vcs.modified", Value: "true"}}}
	clean := &debug.BuildInfo{GoVersion: "go1.99.1", Main: debug.Module{Version: "(devel)"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "fedcba"}, {Key: "vcs.modified", Value: "false"}}}
	tests := []struct {
		name            string
		version, commit string
		info            *debug.BuildInfo
		want            app.BuildInfo
	}{
		{"stamped by make build", "v1.2.0", "abc123", info, app.BuildInfo{Version: "v1.2.0", Commit: "abc123", GoVersion: "go1.99.1"}},
		{"from VCS, local changes", "", "", info, app.BuildInfo{Version: "v0.0.0-20261101000000-0123456789ab+dirty", Commit: "0123456789abcdef-dirty", GoVersion: "go1.99.1"}},
		{"from VCS, clean", "", "", clean, app.BuildInfo{Version: "(devel)", Commit: "fedcba", GoVersion: "go1.99.1"}},
		{"only the version stamped", "v1.2.0", "", clean, app.BuildInfo{Version: "v1.2.0", Commit: "fedcba", GoVersion: "go1.99.1"}},
		{"no build information", "", "", nil, app.BuildInfo{Version: "unknown", Commit: "unknown", GoVersion: runtime.Version()}},
		{"no VCS information", "", "", &debug.BuildInfo{GoVersion: "go1.99.1"}, app.BuildInfo{Version: "unknown", Commit: "unknown", GoVersion: "go1.99.1"}},
	}
	for _, tt := range tests {
		if got := resolveBuild(tt.version, tt.commit, tt.info); got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

// `tally version` and `tally --version` print the version and the commit and touch
// nothing else.
func TestVersionCommand(t *testing.T) {
	want := "tally " + buildInfo().Version + " (commit " + buildInfo().Commit + ", " + runtime.Version() + ")\n"
	for _, arg := range []string{"version", "--version", "-version"} {
		var stdout, stderr bytes.Buffer
		if err := run(context.Background(), []string{arg}, getenv(nil), &stdout, &stderr); err != nil {
			t.Fatalf("%s: %v", arg, err)
		}
		if stdout.String() != want || stderr.Len() != 0 {
			t.Errorf("%s printed %q (stderr %q), want %q", arg, stdout.String(), stderr.String(), want)
		}
	}
}

// The -ldflags -X names `make build` uses really set what `tally --version` prints.
func TestVersionStampedAtBuild(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build the binary: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "tally")
	build := exec.Command(gobin, "build", "-ldflags", "-X main.version=v9.8.7 -X main.commit=c0ffee", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := string(out); !strings.HasPrefix(got, "tally v9.8.7 (commit c0ffee, go") {
		t.Fatalf("--version printed %q", got)
	}
	// The same binary's exit codes: 2 for a command line it cannot take (its problem
	// printed once, with the usage), 1 for a command that failed.
	for _, c := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"settle", "--nope"}, 2, "flag provided but not defined: -nope"},
		{[]string{"export", "payouts", "--to", "2026-12-01"}, 2, "--from and --to are required"},
		{[]string{"trueup", "show", "--property", "arcade", "--to", "2026-12-01"}, 2, "--from and --to are required"},
		{[]string{"replay", "--status", "applied"}, 2, "--status must be quarantined"},
		{[]string{"check", "--config", filepath.Join(t.TempDir(), "absent.yaml")}, 1, "tally: config"},
	} {
		var stderr bytes.Buffer
		cmd := exec.Command(bin, c.args...)
		cmd.Stderr = &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != c.code || !strings.Contains(stderr.String(), c.stderr) ||
			strings.Contains(stderr.String(), "invalid command line") {
			t.Errorf("tally %v: %v, stderr %q; want exit %d and %q", c.args, err, stderr.String(), c.code, c.stderr)
		}
	}
}
