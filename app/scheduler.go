package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/robfig/cron/v3"
)

// StartSettlement runs Settle for every property on spec (a standard 5-field cron spec
// or a descriptor such as "@every 1m", evaluated in UTC) until the returned stop is
// called. Runs never overlap: a tick that finds the previous run still going is skipped.
// A panic in a run is logged and the schedule carries on. Each run's context derives from
// ctx, so cancelling ctx (the serve context, on shutdown) interrupts a run between
// batches; stop stops the schedule and waits for a run in progress to return.
func (a *App) StartSettlement(ctx context.Context, spec string) (stop func(), err error) {
	return schedule(ctx, spec, a.log.With("job", "settlement"), a.settleJob)
}

// settleJob is one scheduled settlement of every property. Settle logs each run.
func (a *App) settleJob(ctx context.Context) {
	if _, err := a.Settle(ctx, ""); err != nil && ctx.Err() == nil {
		a.log.Error("scheduled settlement failed; the next run retries", "err", err)
	}
}

// schedule runs job on spec in UTC until stop. The chain is SkipIfStillRunning outside
// Recover: the other way round, a panic would unwind past SkipIfStillRunning before it
// hands its token back, and every later tick would be skipped forever.
func schedule(ctx context.Context, spec string, log *slog.Logger, job func(context.Context)) (stop func(), err error) {
	sched, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %w", spec, err)
	}
	chainLog := cronLogger{log: log, info: slog.LevelWarn} // its only Info is "skip"
	c := cron.New(
		cron.WithLocation(time.UTC),
		cron.WithLogger(cronLogger{log: log, info: slog.LevelDebug}), // a line per tick otherwise
		cron.WithChain(cron.SkipIfStillRunning(chainLog), cron.Recover(chainLog)),
	)
	jobCtx, cancel := context.WithCancel(ctx)
	c.Schedule(sched, cron.FuncJob(func() { job(jobCtx) }))
	c.Start()
	return func() {
		<-c.Stop().Done() // no new runs; wait for the one in progress
		cancel()
	}, nil
}

// cronLogger adapts slog to cron's logger; info is the level of cron's Info messages.
type cronLogger struct {
	log  *slog.Logger
	info slog.Level
}

func (l cronLogger) Info(msg string, kv ...any) {
	if msg == "skip" {
		msg = "previous run still in progress; this tick is skipped"
	}
	l.log.Log(context.Background(), l.info, "cron: "+msg, kv...)
}

func (l cronLogger) Error(err error, msg string, kv ...any) {
	if msg == "panic" {
		msg = "run panicked; recovered, the schedule carries on"
	}
	l.log.Error("cron: "+msg, append(kv, "err", err)...)
}
