-- +goose Up
-- The payout report lists users in byte order (COLLATE "C"), on both databases and
-- whatever the Postgres database's locale. With property and user_id of entries and
-- sessions in the database's own collation, their (property, user_id, …) indexes are
-- in locale order, so the report had to sort every wallet leg before the period's end
-- before its first row could leave. In "C" the indexes are in byte order and the report
-- streams straight off them (store/report.go).
--
-- Equality is the same in every deterministic collation, so every lookup by property
-- and user means what it did, and still uses these indexes; a join of these columns with
-- those of another table (journal, wallets) still compares equal ids as equal. Only the
-- order of ids changes, and nothing but the report orders by them.
--
-- The type does not change, so the tables are not rewritten; the indexes on these
-- columns (entries_user, sessions_user) are rebuilt, under a lock that holds writers to
-- entries and sessions for the rebuild's time.
ALTER TABLE entries
    ALTER COLUMN property TYPE TEXT COLLATE "C",
    ALTER COLUMN user_id  TYPE TEXT COLLATE "C";
ALTER TABLE sessions
    ALTER COLUMN property TYPE TEXT COLLATE "C",
    ALTER COLUMN user_id  TYPE TEXT COLLATE "C";

-- +goose Down
ALTER TABLE entries
    ALTER COLUMN property TYPE TEXT COLLATE "default",
    ALTER COLUMN user_id  TYPE TEXT COLLATE "default";
ALTER TABLE sessions
    ALTER COLUMN property TYPE TEXT COLLATE "default",
    ALTER COLUMN user_id  TYPE TEXT COLLATE "default";
