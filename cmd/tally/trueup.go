package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"tally/app"
	"tally/config"
)

const trueUpUsage = `usage: tally trueup <command> --property P [flags] [--config F]
  import --property P [--correction] FILE     booked revenue from a CSV (date,revenue_usd) or JSON file
  fetch  --property P --from D --to D [--correction]
                                             booked revenue from Gamezop's Ad Revenue Reports API
  show   --property P --from D --to D        estimated vs booked per day, and the recommended buffer
  run    --property P --from D --to D [--key K]
                                             release the buffer of those days, once (the key makes a retry safe)
Days are UTC days of receipt, YYYY-MM-DD, inclusive.
`

// cmdTrueUp: tally trueup import|fetch|show|run (issue 14). Actions are recorded in the
// audit log as the command line's.
func cmdTrueUp(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, trueUpUsage)
		return errUsage
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stderr, trueUpUsage)
		return errHelp
	case "import", "fetch", "show", "run":
	default:
		fmt.Fprintf(stderr, "unknown trueup command %q\n\n%s", sub, trueUpUsage)
		return errUsage
	}
	fs, path := flags("trueup "+sub, stderr)
	property := fs.String("property", "", "the property (required)")
	var from, to, key *string
	var correction *bool
	if sub != "import" {
		from = fs.String("from", "", "first UTC day, YYYY-MM-DD (required)")
		to = fs.String("to", "", "last UTC day, YYYY-MM-DD, inclusive (required)")
	}
	if sub == "import" || sub == "fetch" {
		correction = fs.Bool("correction", false, "record changes to days already trued up as corrections")
	}
	if sub == "run" {
		key = fs.String("key", "", "idempotency key (default: a new one; pass the same key to retry a run safely)")
	}
	var file string
	if sub == "import" {
		// The file is the one positional argument, before, between or after the flags:
		// flag parsing stops at it, so it goes on after it.
		var files []string
		for args := rest; ; {
			if err := fs.Parse(args); err != nil {
				if errors.Is(err, flag.ErrHelp) {
					return errHelp
				}
				return errUsage
			}
			if fs.NArg() == 0 {
				break
			}
			files, args = append(files, fs.Arg(0)), fs.Args()[1:]
		}
		if len(files) != 1 {
			fmt.Fprintf(stderr, "tally trueup import: one FILE is required, got %d\n", len(files))
			return errUsage
		}
		file = files[0]
	} else if err := parse(fs, rest); err != nil {
		return err
	}
	if *property == "" {
		fmt.Fprintf(stderr, "tally trueup %s: --property is required\n", sub)
		return errUsage
	}
	if sub != "import" && (*from == "" || *to == "") {
		fmt.Fprintf(stderr, "tally trueup %s: --from and --to are required\n", sub)
		return errUsage
	}
	cfg, _, a, done, err := openApp(ctx, *path, getenv, newLogger(io.Discard))
	if err != nil {
		return err
	}
	defer done()
	if _, ok := cfg.Property(*property); !ok {
		return fmt.Errorf("trueup %s: unknown property %q: not in the config", sub, *property)
	}
	switch sub {
	case "import":
		body, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		ct := "application/json"
		if strings.EqualFold(filepath.Ext(file), ".csv") {
			ct = "text/csv"
		}
		days, corr, err := app.ParseBooked(body, ct)
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		got, err := a.ImportBooked(ctx, *property, days, corr || *correction, config.CLIActor)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: %d days: %d new, %d replaced, %d unchanged, %d corrections\n", *property, len(days),
			got.Inserted, got.Replaced, got.Unchanged, got.Corrected)
	case "fetch":
		got, days, err := a.FetchBooked(ctx, *property, *from, *to, *correction, config.CLIActor)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: fetched %d days: %d new, %d replaced, %d unchanged, %d corrections\n", *property, len(days),
			got.Inserted, got.Replaced, got.Unchanged, got.Corrected)
	case "show":
		s, err := a.TrueUpReport(ctx, *property, *from, *to)
		if err != nil {
			return err
		}
		printTrueUp(stdout, s)
	case "run":
		k := *key
		if k == "" {
			b := make([]byte, 8)
			_, _ = rand.Read(b)
			k = "cli-" + hex.EncodeToString(b)
		}
		r, replayed, err := a.RunTrueUp(ctx, app.TrueUpInput{Property: *property, From: *from, To: *to, IdempotencyKey: k,
			Actor: config.CLIActor})
		if err != nil {
			return err
		}
		again := ""
		if replayed {
			again = " (already run under this key)"
		}
		fmt.Fprintf(stdout, "%s: true-up %d of %s..%s%s: r = %s, released %s to %d users from %d sessions, shortfall %s (key %s)\n",
			r.Property, r.ID, r.From, r.To, again, r.Ratio, r.Released, r.Users, r.Sessions, r.Shortfall, k)
	}
	return nil
}

// printTrueUp prints the variance view as a table.
func printTrueUp(w io.Writer, s app.TrueUpSummary) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "day\tsessions\testimated USD\tbooked USD\tr\tgross\tcredited\twithheld\tcapped\treleased\tshortfall\t")
	row := func(d app.TrueUpDayView, ratio string) {
		booked := "-"
		if d.HasBooked {
			booked = d.Booked.String()
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", d.Day, d.Sessions, d.Estimated, booked, ratio, d.Gross,
			d.Credited, d.Withheld, d.Capped, d.Released, d.Shortfall)
	}
	for _, d := range s.Days {
		ratio := "-"
		if r, ok := d.Ratio(); ok {
			ratio = r.StringFixed(4)
		}
		row(d, ratio)
	}
	ratio := "-"
	if s.PeriodRatio != nil {
		ratio = s.PeriodRatio.StringFixed(4)
	}
	row(s.Period, ratio)
	_ = tw.Flush()
	rec := "none (no day with booked and estimated revenue)"
	if s.RecommendedBuffer != nil {
		rec = s.RecommendedBuffer.String()
	}
	fmt.Fprintf(w, "buffer: %s now; recommended %s (the smallest that kept credits within the booked share on 95 %% of the days)\n",
		s.CurrentBuffer, rec)
}
