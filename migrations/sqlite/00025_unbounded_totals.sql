-- +goose Up
-- Nothing to do on SQLite: money is TEXT, which holds any total. On Postgres this
-- version lifts NUMERIC(38,18) from columns that hold sums (a run's, a window's, a
-- true-up's), which overflowed there and failed on every retry.
SELECT 1;

-- +goose Down
SELECT 1;
