package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mattn/go-isatty"

	"tally/app"
	"tally/rewards"
)

// cmdExport: tally export payouts --from D --to D [--property P] [--format csv|json]
// [--out F] [--config F]. The report's bytes are the HTTP report's (app.WritePayoutReport);
// stderr gets a progress line while it runs, when it is a terminal, and one summary line
// at the end.
func cmdExport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		args = append([]string{"payouts"}, args...) // the help of the only report
	}
	if len(args) == 0 || args[0] != "payouts" {
		fmt.Fprintf(stderr, "tally export: the only report is \"payouts\"\n\n%s", usage)
		return errUsage
	}
	fs, path := flags("export payouts", stderr)
	from := fs.String("from", "", "start of the period, inclusive: YYYY-MM-DD or RFC 3339 (UTC)")
	to := fs.String("to", "", "end of the period, exclusive: YYYY-MM-DD or RFC 3339 (UTC)")
	property := fs.String("property", "", "only this property (default: every property)")
	format := fs.String("format", app.FormatCSV, "csv or json")
	out := fs.String("out", "", "write the report to this file (default: stdout)")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	_, _, a, done, err := openApp(ctx, *path, getenv, newLogger(stderr))
	if err != nil {
		return err
	}
	defer done()
	req, err := a.ParsePayoutRequest(*from, *to, *property, *format)
	if err != nil {
		return fmt.Errorf("export payouts: %w", err)
	}

	w, commit, discard := stdout, func() error { return nil }, func() {}
	if *out != "" {
		f, err := newPartialFile(*out)
		if err != nil {
			return fmt.Errorf("export payouts: %w", err)
		}
		w, commit, discard = f, f.commit, f.discard
	}
	defer discard()

	var progress func(int64)
	var p *progressLine
	if terminal(stderr) {
		p = &progressLine{w: stderr, now: time.Now, start: time.Now()}
		progress = p.update
	}
	totals, err := a.WritePayoutReport(ctx, w, req, progress)
	if p != nil {
		p.clear()
	}
	if err != nil {
		return fmt.Errorf("export payouts: %w", err)
	}
	if err := commit(); err != nil {
		return fmt.Errorf("export payouts: %w", err)
	}
	fmt.Fprintln(stderr, summaryLine(totals, *out))
	return nil
}

// summaryLine is the one line `tally export payouts` ends with: rows and column totals.
func summaryLine(t rewards.PayoutTotals, out string) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "exported %d rows", t.Rows)
	if out != "" {
		fmt.Fprintf(&sb, " to %s", out)
	}
	fmt.Fprintf(&sb, "; totals: opening_available=%s credited_revenue=%s credited_targets=%s credited_achievements=%s"+
		" adjustments=%s settled=%s redeemed=%s closing_available=%s closing_pending=%s sessions=%d estimated_revenue_usd=%s",
		t.OpeningAvailable, t.CreditedRevenue, t.CreditedTargets, t.CreditedAchievements, t.Adjustments, t.Settled,
		t.Redeemed, t.ClosingAvailable, t.ClosingPending, t.Sessions, t.EstimatedRevenueUSD)
	return sb.String()
}

// terminal reports whether w is a terminal, where a progress line that rewrites itself
// makes sense (not a file or a pipe).
func terminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// progressLine rewrites one stderr line with the rows exported so far, a few times a
// second at most.
type progressLine struct {
	w     io.Writer
	now   func() time.Time // time.Now; tests pass their own clock
	start time.Time
	last  time.Time
}

func (p *progressLine) update(rows int64) {
	now := p.now()
	if now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last = now
	rate := float64(rows) / max(now.Sub(p.start).Seconds(), 1e-3)
	fmt.Fprintf(p.w, "\rexporting payouts: %d rows (%.0f rows/s)", rows, rate)
}

func (p *progressLine) clear() {
	if !p.last.IsZero() {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

// partialFile is the --out file while it is written: a temporary file beside it, renamed
// into place only when the whole report is written, so a failed or interrupted export
// never leaves a short report under the requested name.
type partialFile struct {
	*os.File
	final string
	done  bool
}

// newPartialFile creates the temporary file with mode 0644 less the umask, as any file
// a command writes: the report is for finance, not a secret (os.CreateTemp would make
// it 0600, and the rename keeps that mode). The random suffix is retried on a clash.
func newPartialFile(final string) (*partialFile, error) {
	dir, base := filepath.Dir(final), filepath.Base(final)
	for {
		b := make([]byte, 8)
		_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
		name := filepath.Join(dir, "."+base+"."+hex.EncodeToString(b)+".partial")
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return &partialFile{File: f, final: final}, nil
	}
}

func (f *partialFile) commit() error {
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), f.final); err != nil {
		return err
	}
	f.done = true
	return nil
}

func (f *partialFile) discard() {
	if !f.done {
		_ = f.Close()
		_ = os.Remove(f.Name())
	}
}
