-- +goose Up
-- A true-up's retry with its key answers what the run answered. Its row's released and
-- shortfall also count what late sessions, replayed into its days after it ran, release
-- and book (so the runs add up to the ledger), so the first answer is kept apart: a
-- retry after a late session answered the run's figures plus the session's, which
-- finance would book against the run. Rows of runs from before keep NULL here and are
-- answered with their running totals.
--
-- And r = B/E is unbounded too: a period whose estimate is tiny (a single SPP of
-- 10^-18 USD) and whose booked revenue is not has r of 10^20 or more, which overflowed
-- NUMERIC(38,18) on every retry, so its days could never be trued up (00025 lifted the
-- totals, not the ratio).
ALTER TABLE trueups ALTER COLUMN ratio TYPE NUMERIC,
                    ADD COLUMN answered_released  NUMERIC,
                    ADD COLUMN answered_shortfall NUMERIC;

-- +goose Down
ALTER TABLE trueups DROP COLUMN answered_released,
                    DROP COLUMN answered_shortfall,
                    ALTER COLUMN ratio TYPE NUMERIC(38,18);
