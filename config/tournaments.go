package config

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"tally/rewards"
)

// Tournament is one leaderboard competition of a property (issue 12): each window ranks
// users by their best score on Game and pays Prizes by rank when it closes. A window is
// given either by Schedule (each window starts on this cron spec, in UTC, and lasts
// Duration) or by Start and End (a single window). Empty Direction, States, Grace,
// Ties, MinPlays and Hold mean higher, [over], 0s, split, 1 and 0s.
type Tournament struct {
	ID        string            `yaml:"id"`
	Game      string            `yaml:"game"`              // gameCode / leaderboard id, as score targets use
	Sources   []rewards.Source  `yaml:"sources,omitempty"` // empty: every source that reports scores
	Direction rewards.Direction `yaml:"direction,omitempty"`
	States    []string          `yaml:"states,omitempty"`   // Gamezop states that count
	Schedule  string            `yaml:"schedule,omitempty"` // 5-field cron spec, UTC
	Duration  Duration          `yaml:"duration,omitempty"`
	Start     string            `yaml:"start,omitempty"` // RFC 3339, for a single window
	End       string            `yaml:"end,omitempty"`
	Grace     Duration          `yaml:"grace,omitempty"`
	Prizes    []TournamentPrize `yaml:"prizes"`
	Ties      rewards.Ties      `yaml:"ties,omitempty"`
	MinPlays  int64             `yaml:"min_plays,omitempty"`
	Hold      Duration          `yaml:"hold,omitempty"`
}

// TournamentPrize pays Amount to each rank in Ranks: "3" or "4-10".
type TournamentPrize struct {
	Ranks  string  `yaml:"ranks"`
	Amount Decimal `yaml:"amount"`
}

// maxPrizeRank bounds a prize table: a typo such as "1-1000000000" should be an error,
// not a loop over a billion ranks.
const maxPrizeRank = 100000

// overlapChecks is how many consecutive windows validation checks for overlap. A cron
// spec repeats within a few years (leap years included), and 2000 daily windows span
// five and a half.
const overlapChecks = 2000

var (
	ranksPattern = regexp.MustCompile(`^([1-9][0-9]*)(?:-([1-9][0-9]*))?$`)
	// overlapFrom is where the overlap check starts: a fixed instant, so whether a config
	// is valid does not depend on the day it is checked.
	overlapFrom = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	// scoreSources are the sources whose events can be scores.
	scoreSources = []rewards.Source{rewards.SourceGamezopScores, rewards.SourceGamePush, rewards.SourceTrackScore}
)

// parseSchedule parses a tournament schedule. Windows must start at fixed instants, so
// "@every" (which counts from whenever the process started) and time-zone prefixes
// (windows are UTC) are refused.
func parseSchedule(spec string) (cron.Schedule, error) {
	switch {
	case strings.HasPrefix(spec, "@every"):
		return nil, fmt.Errorf("@every has no fixed start times; use a cron spec such as \"0 0 * * 1\"")
	case strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ="):
		return nil, fmt.Errorf("windows are in UTC; remove the time zone")
	}
	return cron.ParseStandard(spec)
}

// parseRanks reads "3" or "4-10".
func parseRanks(s string) (from, to int, err error) {
	m := ranksPattern.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, 0, fmt.Errorf("must be a rank such as \"1\" or a range such as \"4-10\", got %q", s)
	}
	from, err1 := strconv.Atoi(m[1])
	to, err2 := from, error(nil)
	if m[2] != "" {
		to, err2 = strconv.Atoi(m[2])
	}
	switch {
	case err1 != nil || err2 != nil || to > maxPrizeRank:
		return 0, 0, fmt.Errorf("ranks go up to %d, got %q", maxPrizeRank, s)
	case to < from:
		return 0, 0, fmt.Errorf("a range must go from low to high, got %q", s)
	}
	return from, to, nil
}

func (t Tournament) direction() rewards.Direction {
	if t.Direction == "" {
		return rewards.Higher
	}
	return t.Direction
}

func (t Tournament) ties() rewards.Ties {
	if t.Ties == "" {
		return rewards.TiesSplit
	}
	return t.Ties
}

func (t Tournament) minPlays() int64 { return max(t.MinPlays, 1) }

func (t Tournament) states() []string {
	if t.States == nil {
		return []string{"over"}
	}
	return t.States
}

// tournaments validates a property's tournaments.
func (v *validator) tournaments(path string, p Property, scaleOK bool) {
	ids := map[string]int{}
	for j, t := range p.Tournaments {
		at := fmt.Sprintf("%s[%d]", path, j)
		switch {
		case t.ID == "":
			v.add(at+".id", "is required")
		case !targetID.MatchString(t.ID):
			// The id is part of the prize's claim and ref ("tournament:<id>:<start>").
			v.add(at+".id", "must match %s, got %q", targetID, t.ID)
		default:
			if k, dup := ids[t.ID]; dup {
				v.add(at+".id", "%q is already the id of tournaments[%d]", t.ID, k)
			} else {
				ids[t.ID] = j
			}
		}
		v.providerID(at+".game", t.Game, "the game or leaderboard whose scores count")
		for k, s := range t.Sources {
			sp := fmt.Sprintf("%s.sources[%d]", at, k)
			if !slices.Contains(scoreSources, s) {
				v.add(sp, "must be gamezop_scores, gamepush or trackscore, got %q", s)
			} else if _, _, _, ok := p.Credentials(s); !ok {
				v.add(sp, "%s is not configured under the property's sources", s)
			}
		}
		if d := t.direction(); d != rewards.Higher && d != rewards.Lower {
			v.add(at+".direction", "must be higher or lower, got %q", d)
		}
		if t.States != nil && len(t.States) == 0 {
			v.add(at+".states", "must list at least one state; leave the key out for the default [over]")
		}
		for k, s := range t.States {
			switch {
			case s == "loaded" || s == "start":
				// They carry the score a play begins with; rewards never counts them.
				v.add(fmt.Sprintf("%s.states[%d]", at, k), "%q never counts in a tournament (it reports the score a play starts with); use over (or, when higher is better, playing or levelup)", s)
			case !slices.Contains(gamezopStates, s):
				v.add(fmt.Sprintf("%s.states[%d]", at, k), "must be one of %s, got %q", strings.Join(gamezopStates, ", "), s)
			case (s == "playing" || s == "levelup") && t.direction() == rewards.Lower:
				// A play's score so far, low early in a lower-is-better game: it would top
				// the board before the play ends.
				v.add(fmt.Sprintf("%s.states[%d]", at, k), "%q reports a play's score so far, which would top a direction: lower leaderboard before the play ends; count over", s)
			}
		}
		v.tournamentWindows(at, t)
		v.duration(at+".grace", t.Grace)
		v.duration(at+".hold", t.Hold)
		if ties := t.ties(); ties != rewards.TiesSplit && ties != rewards.TiesFirst {
			v.add(at+".ties", "must be split or first, got %q", ties)
		}
		if t.MinPlays < 0 {
			v.add(at+".min_plays", "must not be negative, got %d", t.MinPlays)
		}
		if len(t.Prizes) == 0 {
			v.add(at+".prizes", "must list at least one prize")
		}
		var ranges [][2]int
		for k, pr := range t.Prizes {
			pp := fmt.Sprintf("%s.prizes[%d]", at, k)
			from, to, err := parseRanks(pr.Ranks)
			if err != nil {
				v.add(pp+".ranks", "%v", err)
			} else {
				for i, r := range ranges {
					if from <= r[1] && r[0] <= to {
						v.add(pp+".ranks", "%q overlaps prizes[%d]; a rank is paid by one prize", pr.Ranks, i)
					}
				}
				ranges = append(ranges, [2]int{from, to})
			}
			v.nonNegative(pp+".amount", pr.Amount, true)
			v.reward(pp+".amount", pr.Amount, p.Scale, scaleOK)
		}
	}
}

// tournamentWindows checks schedule + duration, or start + end.
func (v *validator) tournamentWindows(at string, t Tournament) {
	if t.Schedule != "" && (t.Start != "" || t.End != "") {
		v.add(at, "give either schedule and duration, or start and end, not both")
		return
	}
	if t.Schedule == "" {
		if t.Duration != "" {
			v.add(at+".duration", "goes with schedule; a single window is start and end")
		}
		start, okStart := v.instant(at+".start", t.Start)
		end, okEnd := v.instant(at+".end", t.End)
		if okStart && okEnd && !end.After(start) {
			v.add(at+".end", "must be after start")
		}
		return
	}
	sched, err := parseSchedule(t.Schedule)
	if err != nil {
		v.add(at+".schedule", "must be a cron spec (5 fields, UTC): %v, got %q", err, t.Schedule)
		return
	}
	d, err := time.ParseDuration(string(t.Duration))
	switch {
	case t.Duration == "":
		v.add(at+".duration", "is required with schedule: how long each window lasts")
		return
	case err != nil || d <= 0:
		v.add(at+".duration", "must be a positive duration such as \"168h\", got %q", t.Duration)
		return
	}
	// A window is current until its grace ends; a grace as long as a window would keep
	// each window current through the whole next one, whose leaderboard the publisher
	// API would then never show as current.
	if g, err := time.ParseDuration(string(t.Grace)); err == nil && g >= d {
		v.add(at+".grace", "must be shorter than duration (%s), got %q", t.Duration, t.Grace)
	}
	// Windows must not overlap: a score then belongs to exactly one window.
	s := sched.Next(overlapFrom)
	if s.IsZero() {
		v.add(at+".schedule", "never fires (no such date), got %q", t.Schedule)
		return
	}
	for range overlapChecks {
		n := sched.Next(s)
		if n.IsZero() {
			break
		}
		if n.Sub(s) < d {
			v.add(at+".duration", "%s is longer than the %s between the windows starting %s and %s; windows must not overlap",
				t.Duration, shortDuration(n.Sub(s)), s.Format(time.RFC3339), n.Format(time.RFC3339))
			return
		}
		s = n
	}
}

func (v *validator) instant(path, s string) (time.Time, bool) {
	if s == "" {
		v.add(path, "is required (or schedule and duration)")
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		v.add(path, "must be an RFC 3339 time such as \"2026-12-07T00:00:00Z\", got %q", s)
		return time.Time{}, false
	}
	return t.UTC(), true
}

// tournamentRules converts the property's tournaments into the domain's, defaults
// applied. It assumes Validate passed.
func (p Property) tournamentRules() []rewards.Tournament {
	var out []rewards.Tournament
	for _, t := range p.Tournaments {
		r := t.rule()
		r.Scale = p.Scale
		out = append(out, r)
	}
	return out
}

func (t Tournament) rule() rewards.Tournament {
	out := rewards.Tournament{
		ID:        t.ID,
		Game:      t.Game,
		Sources:   slices.Clone(t.Sources),
		Direction: t.direction(),
		States:    slices.Clone(t.states()),
		Grace:     mustDuration(t.Grace),
		Ties:      t.ties(),
		MinPlays:  t.minPlays(),
		Hold:      mustDuration(t.Hold),
	}
	if t.Schedule != "" {
		if sched, err := parseSchedule(t.Schedule); err == nil {
			out.Next = func(at time.Time) time.Time { return sched.Next(at.UTC()).UTC() }
		}
		out.Duration = mustDuration(t.Duration)
	} else {
		out.Start, _ = time.Parse(time.RFC3339, t.Start)
		out.End, _ = time.Parse(time.RFC3339, t.End)
		out.Start, out.End = out.Start.UTC(), out.End.UTC()
	}
	for _, pr := range t.Prizes {
		from, to, _ := parseRanks(pr.Ranks)
		out.Prizes = append(out.Prizes, rewards.Prize{From: from, To: to, Amount: mustDecimal(pr.Amount)})
	}

	v := newVersion("tournament")
	v.field("id", out.ID)
	v.field("game", out.Game)
	sources := slices.Clone(out.Sources)
	slices.Sort(sources)
	for _, s := range slices.Compact(sources) {
		v.field("source", string(s))
	}
	v.field("direction", string(out.Direction))
	states := slices.Clone(out.States)
	slices.Sort(states)
	for _, s := range slices.Compact(states) {
		v.field("state", s)
	}
	v.field("schedule", t.Schedule)
	v.field("duration", durationField(out.Duration))
	v.field("start", out.Start.Format(time.RFC3339Nano))
	v.field("end", out.End.Format(time.RFC3339Nano))
	v.field("grace", durationField(out.Grace))
	for _, pr := range out.Prizes {
		v.field("prize", fmt.Sprintf("%d-%d:%s", pr.From, pr.To, pr.Amount))
	}
	v.field("ties", string(out.Ties))
	v.field("min_plays", strconv.FormatInt(out.MinPlays, 10))
	v.field("hold", durationField(out.Hold))
	out.Version = v.sum()
	return out
}

// describeTournaments is `tally check`'s account of the property's tournaments.
func describeTournaments(b *strings.Builder, p Property, r rewards.Rules) {
	if len(r.Tournaments) == 0 {
		b.WriteString("  tournaments: none\n")
	}
	for i, t := range r.Tournaments {
		fmt.Fprintf(b, "  tournament %s [version %s]:\n", t.ID, t.Version)
		better := "the highest"
		if t.Direction == rewards.Lower {
			better = "the lowest"
		}
		sources := "every source that reports scores"
		if len(t.Sources) > 0 {
			names := make([]string, len(t.Sources))
			for i, s := range t.Sources {
				names[i] = string(s)
			}
			sources = strings.Join(names, ", ")
		}
		fmt.Fprintf(b, "    ranks users by %s score on game %q from %s (Gamezop states: %s)\n",
			better, t.Game, sources, strings.Join(t.States, ", "))
		if t.Next == nil {
			fmt.Fprintf(b, "    one window: scores made from %s until %s count\n", t.Start.Format(time.RFC3339), t.End.Format(time.RFC3339))
		} else {
			first := t.Next(overlapFrom)
			fmt.Fprintf(b, "    a window starts each time %q fires (UTC) and lasts %s (e.g. %s to %s)\n",
				p.Tournaments[i].Schedule, shortDuration(t.Duration), first.Format(time.RFC3339), first.Add(t.Duration).Format(time.RFC3339))
		}
		fmt.Fprintf(b, "    a score counts when made inside the window (provider's timestamp, else receipt) and received before the end + %s grace;\n",
			shortDuration(t.Grace))
		fmt.Fprintf(b, "    the window then closes and pays, once\n")
		for _, p := range t.Prizes {
			ranks := fmt.Sprintf("rank %d", p.From)
			if p.To != p.From {
				ranks = fmt.Sprintf("ranks %d to %d", p.From, p.To)
			}
			fmt.Fprintf(b, "    %s: %s %s each\n", ranks, p.Amount, r.Currency)
		}
		if t.Ties == rewards.TiesFirst {
			b.WriteString("    equal scores: the earlier score ranks first\n")
		} else {
			fmt.Fprintf(b, "    equal scores share a rank and split the prizes of the ranks they occupy equally, each share cut at %d decimal places (the wallet's scale); the units left over go one each to the tied users in byte order of their ids\n", r.Scale)
		}
		if t.MinPlays > 1 {
			fmt.Fprintf(b, "    users with fewer than %d plays are not ranked\n", t.MinPlays)
		}
		fmt.Fprintf(b, "    %s\n", holdWords(t.Hold))
	}
}
