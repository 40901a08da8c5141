// Package rewards is Tally's pure domain: canonical events, the publisher's rules, and
// the arithmetic that turns one into exact ledger entries. It reads no clock, database or
// network; callers pass time and state in.
package rewards
