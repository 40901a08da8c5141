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
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/schollz/progressbar/v3"

	"tally/app"
	"tally/rewards"
)

// cmdExport: tally export payouts --from D --to D [--property P] [--format csv|json|xlsx]
// [--bom] [--out F] [--config F]. The report's bytes are the HTTP report's
// (app.WritePayoutReport); stderr gets a progress bar while it runs, when it is a
// terminal, and one summary line at the end.
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
	format := fs.String("format", app.FormatCSV, "csv, json or xlsx")
	bom := fs.Bool("bom", false, "start a CSV report with the UTF-8 byte-order mark (for Excel)")
	out := fs.String("out", "", "write the report to this file (default: stdout)")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if *from == "" || *to == "" {
		fmt.Fprintln(stderr, "tally export payouts: --from and --to are required")
		return errUsage
	}
	if getenv("GOGC") == "" {
		// As for serve: the export's live heap is small and flat (one row, a write buffer),
		// and at the default GC target collection is a large part of its CPU. GOGC
		// overrides it.
		debug.SetGCPercent(400)
	}
	_, _, a, done, err := openApp(ctx, *path, getenv, newLogger(stderr))
	if err != nil {
		return err
	}
	defer done()
	req, err := a.ParsePayoutRequest(*from, *to, *property, *format, strconv.FormatBool(*bom))
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
	var bar *progressBar
	if terminal(stderr) {
		// The total is counted before the report's snapshot and from the wallets, so it is
		// an estimate, and says so.
		estimate, err := a.EstimatePayoutRows(ctx, req)
		if err != nil {
			return fmt.Errorf("export payouts: %w", err)
		}
		bar = newProgressBar(stderr, estimate, 100*time.Millisecond)
		progress = bar.update
	}
	totals, err := a.WritePayoutReport(ctx, w, req, progress)
	if bar != nil {
		bar.finish()
	}
	if err != nil {
		return fmt.Errorf("export payouts: %w", err)
	}
	if err := commit(); err != nil {
		return fmt.Errorf("export payouts: %w", err)
	}
	fmt.Fprintln(stderr, summaryLine(totals, *out))
	if !totals.Reconciles() {
		// The report is whole and kept for inspection, but a script closing the month
		// must not take it for a good one.
		return errors.New("export payouts: the report does not reconcile: closing available ≠ opening + settled − redeemed + reversed + adjustments " +
			"(the ledger holds an available amount of a kind the report has no column for); the report was written for inspection")
	}
	return nil
}

// summaryLine is the one line `tally export payouts` ends with: rows and column totals.
func summaryLine(t rewards.ReportTotals, out string) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "exported %d rows", t.Rows)
	if out != "" {
		fmt.Fprintf(&sb, " to %s", out)
	}
	sb.WriteString("; totals: " + app.FormatPayoutTotals(t))
	return sb.String()
}

// terminal reports whether w is a terminal, where a progress bar that redraws itself
// makes sense (not a file or a pipe). A writer may say so itself, as tests' do.
func terminal(w io.Writer) bool {
	if t, ok := w.(interface{ Terminal() bool }); ok {
		return t.Terminal()
	}
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// progressBar draws the export's progress on a terminal: rows done of the estimated
// total, the rate and the time left, redrawn at most every throttle.
type progressBar struct {
	bar *progressbar.ProgressBar
}

func newProgressBar(w io.Writer, estimate int64, throttle time.Duration) *progressBar {
	return &progressBar{bar: progressbar.NewOptions64(max(estimate, 1),
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(fmt.Sprintf("payouts (about %d rows, estimated)", estimate)),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("rows"),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(throttle),
		progressbar.OptionUseANSICodes(true),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetRenderBlankState(true),
	)}
}

// update shows rows done. An estimate that was short grows ahead of the rows seen: a
// bar at its total counts as finished and would stop drawing.
func (p *progressBar) update(rows int64) {
	if rows >= p.bar.GetMax64() {
		p.bar.ChangeMax64(rows + rows/8 + 1)
	}
	_ = p.bar.Set64(rows) // drawing on stderr: a failure to draw must not fail the export
}

// finish clears the bar, leaving the line to the summary.
func (p *progressBar) finish() {
	_ = p.bar.Exit()
	_ = p.bar.Clear()
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
