-- +goose Up
-- A session record is what true-ups release against (its withheld buffer, its credit,
-- its cap): Tally only inserts it, with the revenue legs it describes, and `tally verify`
-- holds it to them. Like the ledger, it is now append-only in the database itself.
CREATE TRIGGER sessions_append_only BEFORE UPDATE OR DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION tally_append_only();
CREATE TRIGGER sessions_no_truncate BEFORE TRUNCATE ON sessions
    FOR EACH STATEMENT EXECUTE FUNCTION tally_append_only();

-- +goose Down
DROP TRIGGER sessions_no_truncate ON sessions;
DROP TRIGGER sessions_append_only ON sessions;
