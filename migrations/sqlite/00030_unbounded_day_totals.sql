-- +goose Up
-- Nothing to do on SQLite: money is TEXT, which holds any total. On Postgres this
-- version lifts NUMERIC(38,18) from user_days.revenue_credited, a day's sum of session
-- credits, which overflowed there and failed its session on every replay.
SELECT 1;

-- +goose Down
SELECT 1;
