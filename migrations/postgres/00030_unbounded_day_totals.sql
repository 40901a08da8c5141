-- +goose Up
-- A user's day total of revenue credited (what per_user_per_day caps) is a sum of
-- session credits, each within NUMERIC(38,18), and the wallet's own balances stay within
-- it (an adjustment can take lifetime_earned back down), so the day's total may not: a
-- session that took it past 10^20 failed with "numeric field overflow" and stayed
-- quarantined on every replay, where SQLite, keeping money as text, applied it.
-- Unbounded NUMERIC, as 00025 made the other totals; the change of typmod rewrites nothing.
ALTER TABLE user_days ALTER COLUMN revenue_credited TYPE NUMERIC;

-- +goose Down
ALTER TABLE user_days ALTER COLUMN revenue_credited TYPE NUMERIC(38,18);
