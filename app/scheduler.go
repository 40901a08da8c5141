package app

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
)

// StartSettlement runs Settle for every property on spec (a standard 5-field cron spec
// or a descriptor such as "@every 1m", evaluated in UTC) until the returned stop is
// called. Runs never overlap: a tick that finds the previous run still going is skipped.
// A panic in a run is logged and the schedule carries on. Each run's context derives from
// ctx, so cancelling ctx (the serve context, on shutdown) interrupts a run between
// batches; stop stops the schedule and waits for a run in progress to return.
//
// It also runs once as it starts, for a tick no run settled: the process was down at the
// tick (a deploy, a crash) or stopped during its run. That run settles what matured by
// the schedule's latest tick, as the tick would have, and finds nothing when the tick
// was settled; without it, a daily schedule left that day's lots for the next day.
func (a *App) StartSettlement(ctx context.Context, spec string) (stop func(), err error) {
	trig, err := cronTrigger(spec, a.log)
	if err != nil {
		return nil, err
	}
	sched, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %w", spec, err)
	}
	log := a.log.With("job", "settlement")
	a.metrics.lastSweep.SetToCurrentTime() // the schedule's start, until its first sweep ends
	return schedule(ctx, withStartRun(trig), log, a.metrics.skippedTicks.WithLabelValues("settlement").Inc,
		func(ctx context.Context) { a.settleJob(ctx, sched, log) }), nil
}

// settleJob is one scheduled settlement of every property: the lots matured by sched's
// latest tick. Settle logs each run; tally_settlement_sweep_timestamp_seconds says when
// the sweep ended, failed runs and all (they have their own counter), so an alert sees a
// sweep that never ends.
func (a *App) settleJob(ctx context.Context, sched cron.Schedule, log *slog.Logger) {
	defer a.metrics.lastSweep.SetToCurrentTime()
	now := a.store.Now()
	tick := lastTick(sched, now)
	if tick.IsZero() {
		return // no tick in the last 32 days: nothing is due
	}
	if now.Sub(tick) > time.Minute {
		log.Info("settling what matured by the schedule's last tick, which no run may have settled", "tick", tick)
	}
	if _, err := a.settle(ctx, "", "", tick); err != nil && ctx.Err() == nil {
		log.Error("scheduled settlement failed; the next run retries", "err", err)
	}
}

// lastTick is sched's latest tick at or before now, within the last 32 days (zero when
// there is none); now for an @every schedule. It looks back an hour first, then a day,
// then 32 days, so a frequent schedule is walked over at most an hour of ticks.
func lastTick(sched cron.Schedule, now time.Time) time.Time {
	if _, ok := sched.(cron.ConstantDelaySchedule); ok {
		// @every ticks from when the schedule started, not on a clock of its own: the
		// tick is now.
		return now
	}
	for _, back := range []time.Duration{time.Hour, 24 * time.Hour, 32 * 24 * time.Hour} {
		var last time.Time
		for t := now.Add(-back); ; {
			n := sched.Next(t)
			if n.IsZero() || n.After(now) || !n.After(t) {
				break
			}
			last, t = n, n
		}
		if !last.IsZero() {
			return last
		}
	}
	return time.Time{}
}

// withStartRun is trig, and one fire as it starts (StartSettlement).
func withStartRun(trig trigger) trigger {
	return func(fire func()) func() {
		stop := trig(fire)
		done := make(chan struct{})
		go func() {
			defer close(done)
			fire()
		}()
		return func() {
			stop()
			<-done
		}
	}
}

// A trigger decides when a scheduled job runs: it calls fire on each tick, possibly
// from several goroutines at once, until the stop it returns, which returns once no
// fire is in progress and none will follow. Production uses cronTrigger; tests fire by
// hand, so they need no clock and no sleeps.
type trigger func(fire func()) (stop func())

// cronTrigger fires on spec in UTC.
func cronTrigger(spec string, log *slog.Logger) (trigger, error) {
	sched, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %w", spec, err)
	}
	return func(fire func()) func() {
		c := cron.New(
			cron.WithLocation(time.UTC),
			cron.WithLogger(cronLogger{log: log, info: slog.LevelDebug}), // a line per tick otherwise
		)
		c.Schedule(sched, cron.FuncJob(fire)) // cron runs each tick in its own goroutine
		c.Start()
		return func() { <-c.Stop().Done() }
	}, nil
}

// schedule runs job on every fire of trig until stop. The chain is SkipIfStillRunning
// outside Recover: the other way round, a panic would unwind past SkipIfStillRunning
// before it hands its token back, and every later tick would be skipped forever. stop
// stops the trigger, waits for a run in progress, then cancels the job's context; a
// fire after stop runs nothing. skipped, when not nil, is called for each fire skipped.
func schedule(ctx context.Context, trig trigger, log *slog.Logger, skipped func(), job func(context.Context)) (stop func()) {
	chainLog := cronLogger{log: log, info: slog.LevelWarn, skipped: skipped} // its only Info is "skip"
	jobCtx, cancel := context.WithCancel(ctx)
	run := cron.NewChain(cron.SkipIfStillRunning(chainLog), cron.Recover(chainLog)).
		Then(cron.FuncJob(func() { job(jobCtx) }))
	var (
		mu      sync.Mutex
		stopped bool
		running sync.WaitGroup
	)
	stopTrigger := trig(func() {
		mu.Lock()
		if stopped {
			mu.Unlock()
			return
		}
		running.Add(1)
		mu.Unlock()
		defer running.Done()
		run.Run()
	})
	return func() {
		stopTrigger()
		mu.Lock()
		stopped = true
		mu.Unlock()
		running.Wait() // no new runs; wait for the one in progress
		cancel()
	}
}

// cronLogger adapts slog to cron's logger; info is the level of cron's Info messages, and
// skipped (when not nil) is called for each "skip" (a tick that found the run before it
// still going).
type cronLogger struct {
	log     *slog.Logger
	info    slog.Level
	skipped func()
}

func (l cronLogger) Info(msg string, kv ...any) {
	if msg == "skip" {
		msg = "previous run still in progress; this tick is skipped"
		if l.skipped != nil {
			l.skipped()
		}
	}
	l.log.Log(context.Background(), l.info, "cron: "+msg, kv...)
}

func (l cronLogger) Error(err error, msg string, kv ...any) {
	if msg == "panic" {
		msg = "run panicked; recovered, the schedule carries on"
	}
	l.log.Error("cron: "+msg, append(kv, "err", err)...)
}
