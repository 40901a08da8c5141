package rewards

import (
	"time"

	"github.com/shopspring/decimal"
)

// What the store reads and writes for tournaments (tournament.go has the rules).

// LeaderboardQuery asks for one page of a window's leaderboard, best first. Cursor is
// a NextCursor from the page before ("" for the first page); User, when set, also asks
// for that user's own row.
type LeaderboardQuery struct {
	Property   string
	Tournament Tournament
	Window     Window
	Limit      int
	Cursor     string
	User       string
}

// LeaderboardRow is one user's standing. Rank is 0 for a user the leaderboard does not
// rank (fewer plays than min_plays). Prize is set in a closed window for a user who was
// paid one.
type LeaderboardRow struct {
	Rank       int64
	User       string
	Score      decimal.Decimal
	AchievedAt time.Time
	Plays      int64
	Prize      *decimal.Decimal
}

// Leaderboard is one page, the cursor of the next (empty on the last), the asked-for
// user's row (nil when the user has no score in the window), and the window's record.
type Leaderboard struct {
	Rows       []LeaderboardRow
	NextCursor string
	UserRow    *LeaderboardRow
	Record     WindowRecord
}

// WindowRecord is what the store knows of a window: nothing until its first score
// counts (Exists false), then the end it began with, whether and when it closed and
// what it paid.
type WindowRecord struct {
	Property   string
	Tournament string
	Start      time.Time
	End        time.Time
	Exists     bool
	Game       string    // the game the window ranks, kept when it began; "" if it began before that was kept
	ClosedAt   time.Time // zero while open
	ClosesAt   time.Time // end + grace as the close took it; zero while open, and for windows closed before it was kept
	Ranked     int64     // users ranked at the close
	Paid       decimal.Decimal
	// FinalBoard: the window's final ranking was stored when it closed, and its
	// leaderboard is read from it (windows closed before the ranking was kept are
	// ranked from their scores with the config of the day).
	FinalBoard bool
}

// Close outcomes.
const (
	CloseDone    = "closed"         // ranked and paid by this call
	CloseAlready = "already_closed" // closed before (by another replica, or an earlier run)
	CloseNotDue  = "not_due"        // end + grace has not passed
	CloseWaiting = "waiting"        // events received before end + grace wait for the applier
)

// WindowClose is what one attempt to close a window did.
type WindowClose struct {
	Property   string
	Tournament string
	Window     Window
	Outcome    string // CloseDone, CloseAlready, CloseNotDue or CloseWaiting
	Ranked     int64
	Paid       decimal.Decimal
	Awards     []Award
	// Quarantined counts the scores of the tournament's game received before the close
	// that were kept quarantined then: the close ranked without them (a replay later does
	// not count them), which the closer logs as a warning.
	Quarantined int64
}
