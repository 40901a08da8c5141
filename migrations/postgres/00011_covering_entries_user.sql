-- +goose Up
-- entries_user, the (property, user_id, id) index every per-user read of the ledger goes
-- through, carries the columns those reads take from a leg, so Postgres answers them from
-- the index alone (an index-only scan) instead of one heap page per leg:
--   - the payout report's stream (store/report.go) reads every wallet leg before the
--     period's end in (property, user_id) order: account, bucket, kind, amount and
--     created_at. A user's legs are written at different times and lie scattered over the
--     heap; from the index they are contiguous. Measured on 100,000 users: the stream took
--     half the time.
--   - a page of a user's transactions (store/balances.go) reads the newest legs of one
--     user: the same columns and journal_id for the join to the journal.
-- journal_user does the same for the journal rows of a page: a user's journal rows are
-- contiguous in it, with the columns the page shows. A page of 100 transactions with 10M
-- entries in the database read ~500 buffers (a heap page per leg, an index and a heap
-- page per journal row) and now reads ~20: 21 ms to 2 ms when they are not cached. A
-- journal row and its wallet legs always have the same property and user
-- (store/ledger.go writes both from one wallet).
-- An index-only scan visits the heap for rows on pages not yet marked all-visible, that
-- is written since the table's last vacuum. Entries and journal are append-only, and by
-- default autovacuum visits an insert-only table after it grew by a fifth: on a large
-- ledger, millions of the newest rows (the month a report is asked for, the top of each
-- user's transactions) would be read from the heap. Both tables are vacuumed after every
-- 100,000 rows inserted instead; such a vacuum reads only the pages written since the
-- last one and, with nothing dead, skips the indexes.
--
-- entries_user is about a third larger; journal_user is one more index written with each
-- journal row (one per ledger entry, not per leg).
--
-- The indexes are built under a lock that holds writers to entries and journal for the
-- build's time (as 00010 does); readers go on. The new entries_user replaces the old one
-- under its name last: dropping an index locks its table against readers too, until the
-- migration commits, so that is the migration's last step. That lock waits for the
-- readers of entries still running (a long export), and readers arriving meanwhile wait
-- behind it. A payout report "to now" asked while the migration runs waits for it as
-- for any writer in flight, and gives up after 10 s.
CREATE INDEX journal_user ON journal (property, user_id, id)
    INCLUDE (rule, rule_version, ref, matures_at);
CREATE INDEX entries_user_covering ON entries (property, user_id, id)
    INCLUDE (account, bucket, kind, amount, created_at, journal_id);
ALTER TABLE entries SET (autovacuum_vacuum_insert_threshold = 100000, autovacuum_vacuum_insert_scale_factor = 0);
ALTER TABLE journal SET (autovacuum_vacuum_insert_threshold = 100000, autovacuum_vacuum_insert_scale_factor = 0);
DROP INDEX entries_user;
ALTER INDEX entries_user_covering RENAME TO entries_user;

-- +goose Down
ALTER TABLE journal RESET (autovacuum_vacuum_insert_threshold, autovacuum_vacuum_insert_scale_factor);
ALTER TABLE entries RESET (autovacuum_vacuum_insert_threshold, autovacuum_vacuum_insert_scale_factor);
DROP INDEX journal_user;
CREATE INDEX entries_user_plain ON entries (property, user_id, id);
DROP INDEX entries_user;
ALTER INDEX entries_user_plain RENAME TO entries_user;
