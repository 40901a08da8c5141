-- +goose Up
-- Totals are sums of amounts that each fit NUMERIC(38,18), so they may not: a settlement
-- run over wallets that add up to 10^20 units, a tournament window whose prizes do, a
-- true-up's or a day's release failed with "numeric field overflow" on every retry (the
-- wallets of that batch never settled, the window never closed), where SQLite, keeping
-- money as text, went on. Unbounded NUMERIC keeps every digit; the change of typmod
-- rewrites nothing.
ALTER TABLE settlements        ALTER COLUMN amount    TYPE NUMERIC;
ALTER TABLE tournament_windows ALTER COLUMN paid      TYPE NUMERIC;
ALTER TABLE trueups            ALTER COLUMN estimated TYPE NUMERIC,
                               ALTER COLUMN booked    TYPE NUMERIC,
                               ALTER COLUMN released  TYPE NUMERIC,
                               ALTER COLUMN shortfall TYPE NUMERIC;
ALTER TABLE trueup_days        ALTER COLUMN released  TYPE NUMERIC,
                               ALTER COLUMN shortfall TYPE NUMERIC;

-- +goose Down
ALTER TABLE settlements        ALTER COLUMN amount    TYPE NUMERIC(38,18);
ALTER TABLE tournament_windows ALTER COLUMN paid      TYPE NUMERIC(38,18);
ALTER TABLE trueups            ALTER COLUMN estimated TYPE NUMERIC(38,18),
                               ALTER COLUMN booked    TYPE NUMERIC(38,18),
                               ALTER COLUMN released  TYPE NUMERIC(38,18),
                               ALTER COLUMN shortfall TYPE NUMERIC(38,18);
ALTER TABLE trueup_days        ALTER COLUMN released  TYPE NUMERIC(38,18),
                               ALTER COLUMN shortfall TYPE NUMERIC(38,18);
