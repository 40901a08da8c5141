package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"tally/app"
	"tally/config"
	"tally/postbacks"
	"tally/rewards"
	"tally/store"
)

const usage = `usage: tally <command> [flags]

commands:
  serve    [--config F]                         migrate, then serve HTTP and run the settlement schedule
  migrate  [--config F]                         apply database migrations and exit
  settle   [--config F] [--property P]          run one settlement now
  export   payouts --from D --to D [--property P] [--format csv|json|xlsx] [--bom] [--out F] [--config F]
  replay   [--status quarantined] [--property P] [--config F]
  check    [--config F]                         validate the config and print the effective rules
  verify   [--property P] [--config F]          check the ledger's invariants (reads the whole ledger)
  sub      sign --property P --user U [--ttl D] print a signed sub token for a game URL
  trueup   import|fetch|show|run --property P ...  booked revenue and buffer true-ups (tally trueup -h)
  version                                       print the version and commit (also --version)

The config file is --config, else $TALLY_CONFIG, else tally.yaml.
`

// errUsage is returned for a bad command line; the message is already printed.
var errUsage = errors.New("invalid command line")

// errMigrationsPending is what a command other than serve and migrate answers a database
// with migrations pending.
var errMigrationsPending = errors.New("the database has migrations pending: run `tally migrate` first (on a large ledger, in a quiet hour: see Migrations on start in the README's Production section)")

// errHelp is returned by parse for -h or --help: the command's help is printed, and the
// command must stop there, touching nothing. run turns it into success.
var errHelp = errors.New("help requested")

// run is the whole program: args without the binary name, the environment, and where
// output goes. It returns when the command is done or, for serve, when ctx ends.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if err := dispatch(ctx, args, getenv, stdout, stderr); !errors.Is(err, errHelp) {
		return err
	}
	return nil
}

// dispatch runs the command args[0] names.
func dispatch(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return cmdServe(ctx, rest, getenv, stderr)
	case "migrate":
		return cmdMigrate(ctx, rest, getenv, stdout, stderr)
	case "check":
		return cmdCheck(rest, getenv, stdout, stderr)
	case "verify":
		return cmdVerify(ctx, rest, getenv, stdout, stderr)
	case "replay":
		return cmdReplay(ctx, rest, getenv, stdout, stderr)
	case "settle":
		return cmdSettle(ctx, rest, getenv, stdout, stderr)
	case "export":
		return cmdExport(ctx, rest, getenv, stdout, stderr)
	case "trueup":
		return cmdTrueUp(ctx, rest, getenv, stdout, stderr)
	case "sub":
		return cmdSub(rest, getenv, time.Now, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	case "version", "--version", "-version":
		printVersion(stdout, buildInfo())
		return nil
	}
	fmt.Fprintf(stderr, "unknown command %q\n\n%s", cmd, usage)
	return errUsage
}

// flags builds a command's flag set with the shared --config flag.
func flags(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("tally "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file (default $TALLY_CONFIG, else tally.yaml)")
	return fs, path
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	return nil
}

// loadConfig loads the config file the flag and environment pick. config.Load's errors
// already name the file ("config tally.yaml: …"), so they are returned as they are.
func loadConfig(path string, getenv func(string) string) (config.Config, error) {
	return config.Load(config.Resolve(path, getenv), getenv)
}

// openStore opens the configured database; existing refuses a SQLite file that is not
// there yet rather than create an empty ledger (every command but serve and migrate).
// replica opens database.read_url too, for serve's publisher reads: the other commands
// read and write the primary only, and a replica that does not answer stopped them all.
// log takes the store's own lines (nil: slog's default).
func openStore(ctx context.Context, cfg config.Config, existing, replica bool, log *slog.Logger) (*store.DB, error) {
	o := store.Options{Webhooks: cfg.WebhookSubscriptions(), Existing: existing, Log: log}
	if replica {
		o.ReadURL = cfg.Database.ReadURL
	}
	return store.Open(ctx, cfg.Database.URL, o)
}

// openApp loads the config, opens the store and wires the app: what every command that
// works on the ledger needs. Only serve migrates (as DESIGN says); the other commands
// refuse a database with migrations pending, since one may hold the ledger for a while
// (README "Operations") and a finance machine's newer binary must not start it. done
// releases them in reverse order. openAppMigrating is it for serve (serve set), which
// migrates first and opens the read replica.
func openApp(ctx context.Context, path string, getenv func(string) string, log *slog.Logger) (config.Config, *store.DB, *app.App, func(), error) {
	return openAppMigrating(ctx, path, getenv, log, false)
}

func openAppMigrating(ctx context.Context, path string, getenv func(string) string, log *slog.Logger, serve bool) (config.Config, *store.DB, *app.App, func(), error) {
	cfg, err := loadConfig(path, getenv)
	if err != nil {
		return config.Config{}, nil, nil, nil, err
	}
	// Serve's store logs with serve (JSON); the other commands' app logger discards or
	// is their own output, and the store's rare warnings go to stderr as before.
	var storeLog *slog.Logger
	if serve {
		storeLog = log
	}
	db, err := openStore(ctx, cfg, !serve, serve, storeLog)
	if err != nil {
		return config.Config{}, nil, nil, nil, err
	}
	if serve {
		err = db.Migrate(ctx, logLines{log})
	} else if err = db.Ready(ctx); errors.Is(err, store.ErrNotMigrated) {
		err = errMigrationsPending
	}
	if err == nil {
		err = checkUnits(ctx, db, cfg, serve)
	}
	if err != nil {
		_ = db.Close()
		return config.Config{}, nil, nil, nil, err
	}
	a := newApp(db, cfg, log)
	return cfg, db, a, func() { a.Close(); _ = db.Close() }, nil
}

// logLines writes each line it is given as an Info record of log: what `tally migrate`
// prints, `tally serve` logs (a migration that held a table for seconds during a
// rolling deploy left no trace in the replica's log).
type logLines struct{ log *slog.Logger }

func (l logLines) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		if line != "" {
			l.log.Info(line)
		}
	}
	return len(p), nil
}

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// newApp converts the config into the app's view of it.
func newApp(db *store.DB, cfg config.Config, log *slog.Logger) *app.App {
	props := make([]app.Property, 0, len(cfg.Properties))
	for _, p := range cfg.Properties {
		ap := app.Property{ID: p.ID, GamezopPropertyID: p.GamezopPropertyID, Currency: p.Currency, Scale: p.Scale,
			Sources: map[rewards.Source]postbacks.Credentials{}, Rules: p.Rules()}
		for _, k := range p.APIKeys {
			ap.APIKeys = append(ap.APIKeys, k.Reveal())
		}
		for _, w := range p.Webhooks {
			prev := make([]string, len(w.PreviousSecrets))
			for i, s := range w.PreviousSecrets {
				prev[i] = s.Reveal()
			}
			ap.Webhooks = append(ap.Webhooks, app.Webhook{URL: w.URL, Secret: w.Secret.Reveal(), PreviousSecrets: prev, Events: w.Events})
		}
		if g := p.GamezopReports; g != nil {
			ap.Reports = &app.ReportsSource{URL: g.Endpoint(), BearerToken: g.BearerToken.Reveal()}
		}
		if p.SubTokens != nil {
			st, _ := subTokensOf(cfg, p.ID) // p is in cfg with sub_tokens: cannot fail
			ap.SubTokens = &st
		}
		for _, src := range rewards.AllSources() {
			if bearer, key, secret, ok := p.Credentials(src); ok {
				ap.Sources[src] = postbacks.Credentials{BearerToken: bearer, APIKey: key, Secret: secret,
					Previous: p.PreviousCredentials(src)}
			}
		}
		props = append(props, ap)
	}
	// One group-commit transaction per core: more would only contend for the same cores
	// and shrink the batches (measured: 2 workers beat 4 and 8 on 2 cores).
	workers := max(2, runtime.NumCPU())
	// Three properties settle at once: one stuck behind a wallet lock leaves the others
	// to the other two (each run's batches use two connections of the pool's 31).
	settleLanes := 3
	if db.Dialect() == store.SQLite {
		workers = 1 // SQLite has one writer; more workers would only queue on its lock
		settleLanes = 1
	}
	return app.New(db, app.Options{Properties: props, Admins: admins(cfg), Logger: log,
		IngestWorkers: workers, IngestBatch: 256, SettleLanes: settleLanes, Build: buildInfo(), ReadmitActor: config.ApplierActor})
}

func cmdServe(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs, path := flags("serve", stderr)
	if err := parse(fs, args); err != nil {
		return err
	}
	if getenv("GOGC") == "" {
		// The live heap of a serving process is small (batches of at most a few thousand
		// events), and at the default GC target collection took a fifth of the CPU under
		// ingest load; a target of 400 % measured +23 % throughput. GOGC overrides it.
		debug.SetGCPercent(400)
	}
	log, logs := newBufferedLogger(stderr, logFlushEvery)
	defer logs.Close()
	cfg, db, a, done, err := openAppMigrating(ctx, *path, getenv, log, true)
	if err != nil {
		return err
	}
	defer done()
	for _, w := range cfg.Weaknesses() {
		log.Warn("config: weak credential: " + w)
	}
	// The port first, before any work starts: a process that cannot serve (the port in
	// use) must not apply events, send webhooks or begin a settlement run that its exit
	// then cuts short (logged as a failed run, "storage unavailable").
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	defer ln.Close() // Serve closes it too; this covers a start that fails before it
	// The schedule's runs end with serve, whatever ends it: returning early (the port in
	// use) must not wait for the settlement the schedule runs at start to finish.
	schedCtx, cancelSched := context.WithCancel(ctx)
	defer cancelSched()
	sched, err := startSchedule(schedCtx, a, db, cfg, log)
	if err != nil {
		return err
	}
	defer sched()
	defer cancelSched() // before sched(): a run in progress stops between batches
	// Tournament windows close at end + grace from any replica; the store pays each once.
	stopClosing, err := a.StartTournamentCloser(ctx, app.TournamentCloseSpec)
	if err != nil {
		return err
	}
	defer stopClosing()
	// The applier stops before the store closes (defers run in reverse). Events recorded
	// but not applied when it stops are applied by the next applier to start.
	// On Postgres two appliers overlap one batch's round trips with the other's work
	// (their claims skip each other's rows); SQLite has one writer.
	appliers := 2
	if db.Dialect() == store.SQLite {
		appliers = 1
	}
	applyCtx, stopApply := context.WithCancel(context.WithoutCancel(ctx))
	var applying sync.WaitGroup
	for range appliers {
		applying.Go(func() { a.RunApplier(applyCtx) })
	}
	applying.Go(func() { a.RunWebhooks(applyCtx) })  // the outbox; stops with the appliers
	applying.Go(func() { a.RunGauges(applyCtx, 0) }) // the operator gauges, on a timer
	defer func() { stopApply(); applying.Wait() }()
	log.Info("listening", "addr", ln.Addr().String(), "database", string(db.Dialect()), "properties", len(cfg.Properties))
	err = app.Serve(ctx, ln, a.Handler(), log)
	log.Info("stopped")
	return err
}

func cmdMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, path := flags("migrate", stderr)
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*path, getenv)
	if err != nil {
		return err
	}
	db, err := openStore(ctx, cfg, false, false, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Migrate(ctx, stdout); err != nil {
		return err
	}
	if err := checkUnits(ctx, db, cfg, true); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "migrations up to date")
	return nil
}

// checkUnits refuses a config whose properties' currency or scale changed what the
// ledger's amounts mean (store.CheckUnits): another currency relabels every balance, a
// coarser scale strands the digits beyond it. record: the first units a property is
// seen with, and a finer scale, are recorded (serve and migrate).
func checkUnits(ctx context.Context, db *store.DB, cfg config.Config, record bool) error {
	units := make([]store.Units, len(cfg.Properties))
	at := map[string]int{}
	for i, p := range cfg.Properties {
		units[i], at[p.ID] = store.Units{Property: p.ID, Currency: p.Currency, Scale: p.Scale}, i
	}
	changes, err := db.CheckUnits(ctx, units, record)
	if err != nil {
		return err
	}
	var problems []string
	for _, c := range changes {
		path := fmt.Sprintf("properties[%d]", at[c.Configured.Property])
		if c.Finer > 0 {
			problems = append(problems, fmt.Sprintf("%s.scale: %d, but %d wallets of %s hold available or redeemed amounts with more decimal places: the digits beyond %d could never be redeemed",
				path, c.Configured.Scale, c.Finer, c.Configured.Property, c.Configured.Scale))
			continue
		}
		since := c.Since.Format(time.RFC3339)
		if c.Configured.Currency != c.Ledger.Currency {
			problems = append(problems, fmt.Sprintf("%s.currency: %q, but the ledger of %s holds %s since %s: a new currency would relabel every balance",
				path, c.Configured.Currency, c.Configured.Property, c.Ledger.Currency, since))
		}
		if c.Configured.Scale < c.Ledger.Scale {
			problems = append(problems, fmt.Sprintf("%s.scale: %d, but the ledger of %s holds amounts at scale %d since %s: the digits beyond %d could never be redeemed",
				path, c.Configured.Scale, c.Configured.Property, c.Ledger.Scale, since, c.Configured.Scale))
		}
		if c.Configured.Scale > c.Ledger.Scale {
			problems = append(problems, fmt.Sprintf("%s.scale: %d, but the ledger of %s is at scale %d since %s: run `tally migrate` (or `tally serve`) with this config first, which records the finer scale, or the servers' config could not redeem what this command writes",
				path, c.Configured.Scale, c.Configured.Property, c.Ledger.Scale, since))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("config %s\n(put them back; to re-denominate a ledger, convert its amounts by hand, then delete the property's row of property_units)",
			strings.Join(problems, "\n"))
	}
	return nil
}

func cmdCheck(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, path := flags("check", stderr)
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*path, getenv)
	if err != nil {
		return err
	}
	if err := config.Describe(stdout, cfg); err != nil {
		return err
	}
	for _, w := range cfg.Weaknesses() {
		fmt.Fprintln(stdout, "warning: "+w)
	}
	// Where the database answers, the ledger's units too: a config every other command
	// refuses (another currency, another scale) was "config OK", and the replicas then
	// failed at their next start.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := openStore(ctx, cfg, true, false, nil)
	if err == nil {
		defer db.Close()
		err = db.Ready(ctx)
	}
	if errors.Is(err, store.ErrSchemaNewer) {
		// The database answers, and every other command refuses it: so does check,
		// as a pre-deploy gate before a rollback.
		return fmt.Errorf("config OK, but the ledger refuses this binary: %w", err)
	}
	if err != nil {
		fmt.Fprintf(stdout, "config OK; ledger not checked: %v\n", err)
		return nil
	}
	if err := checkUnits(ctx, db, cfg, false); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "config OK; the ledger's currencies and scales match")
	return nil
}

func cmdReplay(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, path := flags("replay", stderr)
	status := fs.String("status", rewards.StatusQuarantined, "which kept events to replay")
	property := fs.String("property", "", "only this property")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *status != rewards.StatusQuarantined { // before anything is opened, as for --property
		fmt.Fprintf(stderr, "tally replay: --status must be %s (recorded events are the appliers'), got %q\n", rewards.StatusQuarantined, *status)
		return errUsage
	}
	if *property != "" { // checked before anything is opened: a typo must not look like "nothing to replay"
		cfg, err := loadConfig(*path, getenv)
		if err != nil {
			return err
		}
		if _, ok := cfg.Property(*property); !ok {
			return fmt.Errorf("replay: unknown property %q: not in the config", *property)
		}
	}
	_, _, a, done, err := openApp(ctx, *path, getenv, newLogger(io.Discard))
	if err != nil {
		return err
	}
	defer done()
	rep, err := a.Replay(ctx, *status, *property, config.CLIActor, func(r rewards.Applied) {
		line := fmt.Sprintf("event %d (%s %s): %s", r.ID, r.Property, r.Source, r.Status)
		if r.Reason != "" {
			line += ": " + r.Reason
		}
		fmt.Fprintln(stdout, strings.TrimSpace(line))
	})
	line := fmt.Sprintf("replayed %d: %d applied, %d still quarantined", rep.Seen, rep.Applied, rep.Quarantined)
	if len(rep.Failed) > 0 {
		line += fmt.Sprintf(", %d failed to apply and kept as they were (events %v)", len(rep.Failed), rep.Failed)
	}
	fmt.Fprintln(stdout, line)
	if err != nil {
		return err
	}
	// The applier runs here too, so that events recorded while no `tally serve` ran are
	// applied as well: those of --property only, when it is given, else those of every
	// property this config has (DrainConfigured).
	n, err := a.DrainConfigured(ctx, *property)
	fmt.Fprintf(stdout, "applied %d recorded events\n", n)
	return err
}

// admins are the config's named admin credentials, as the app takes them.
func admins(cfg config.Config) []app.Admin {
	var out []app.Admin
	for _, t := range cfg.Admins() {
		out = append(out, app.Admin{Name: t.Name, Token: t.Token.Reveal()})
	}
	return out
}
