-- +goose Up
-- A closed tournament window's prize rows and final board are what its winners were paid
-- and what the publisher API shows for it: like the ledger and finance's payout records
-- (migration 00018), they are append-only in the database itself. Tally only inserts
-- them, in the transaction that closes the window; `tally verify` holds them to the
-- prize legs, and these triggers refuse a change before it happens.
CREATE TRIGGER tournament_prizes_append_only BEFORE UPDATE OR DELETE ON tournament_prizes
    FOR EACH ROW EXECUTE FUNCTION tally_append_only();
CREATE TRIGGER tournament_prizes_no_truncate BEFORE TRUNCATE ON tournament_prizes
    FOR EACH STATEMENT EXECUTE FUNCTION tally_append_only();
CREATE TRIGGER tournament_results_append_only BEFORE UPDATE OR DELETE ON tournament_results
    FOR EACH ROW EXECUTE FUNCTION tally_append_only();
CREATE TRIGGER tournament_results_no_truncate BEFORE TRUNCATE ON tournament_results
    FOR EACH STATEMENT EXECUTE FUNCTION tally_append_only();

-- +goose Down
DROP TRIGGER tournament_results_no_truncate ON tournament_results;
DROP TRIGGER tournament_results_append_only ON tournament_results;
DROP TRIGGER tournament_prizes_no_truncate ON tournament_prizes;
DROP TRIGGER tournament_prizes_append_only ON tournament_prizes;
