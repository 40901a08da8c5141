package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"tally/app"
)

// version and commit are stamped by `make build` (-ldflags "-X main.version=…
// -X main.commit=…"). They are the only package-level variables here because -X can
// set nothing else; the linker writes them and nothing else does. Left empty (go build,
// go run), the module's build information fills them in.
var (
	version string
	commit  string
)

// buildInfo is this binary's identity: the stamped values, else the build information.
func buildInfo() app.BuildInfo {
	info, _ := debug.ReadBuildInfo()
	return resolveBuild(version, commit, info)
}

// resolveBuild prefers stamped values and falls back to what the Go toolchain recorded:
// the main module's version ("(devel)" for a plain build of a checkout) and the VCS
// revision, marked -dirty when the tree had local changes. info may be nil (a binary
// built without module support).
func resolveBuild(version, commit string, info *debug.BuildInfo) app.BuildInfo {
	b := app.BuildInfo{Version: version, Commit: commit, GoVersion: runtime.Version()}
	if info != nil {
		b.GoVersion = info.GoVersion
		if b.Version == "" {
			b.Version = info.Main.Version
		}
		if b.Commit == "" {
			var modified bool
			for _, s := range info.Settings {
				switch s.Key {
				case "vcs.revision":
					b.Commit = s.Value
				case "vcs.modified":
					modified = s.Value == "true"
				}
			}
			if modified && b.Commit != "" {
				b.Commit += "-dirty"
			}
		}
	}
	if b.Version == "" {
		b.Version = "unknown"
	}
	if b.Commit == "" {
		b.Commit = "unknown"
	}
	return b
}

// printVersion: tally version, tally --version.
func printVersion(w io.Writer, b app.BuildInfo) {
	fmt.Fprintf(w, "tally %s (commit %s, %s)\n", b.Version, b.Commit, b.GoVersion)
}
