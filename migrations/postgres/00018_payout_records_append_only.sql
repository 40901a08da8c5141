-- +goose Up
-- Redemptions, adjustments and reversals are finance's records of money paid out, put
-- in and given back: like the ledger (journal, entries, claims) and the audit log, they
-- are append-only in the database itself, not only by convention. Nothing in Tally
-- updates or deletes them.
CREATE TRIGGER redemptions_append_only BEFORE UPDATE OR DELETE ON redemptions
    FOR EACH ROW EXECUTE FUNCTION tally_append_only();
CREATE TRIGGER redemptions_no_truncate BEFORE TRUNCATE ON redemptions
    FOR EACH STATEMENT EXECUTE FUNCTION tally_append_only();
CREATE TRIGGER adjustments_append_only BEFORE UPDATE OR DELETE ON adjustments
    FOR EACH ROW EXECUTE FUNCTION tally_append_only();
CREATE TRIGGER adjustments_no_truncate BEFORE TRUNCATE ON adjustments
    FOR EACH STATEMENT EXECUTE FUNCTION tally_append_only();
CREATE TRIGGER reversals_append_only BEFORE UPDATE OR DELETE ON reversals
    FOR EACH ROW EXECUTE FUNCTION tally_append_only();
CREATE TRIGGER reversals_no_truncate BEFORE TRUNCATE ON reversals
    FOR EACH STATEMENT EXECUTE FUNCTION tally_append_only();

-- +goose Down
DROP TRIGGER reversals_no_truncate ON reversals;
DROP TRIGGER reversals_append_only ON reversals;
DROP TRIGGER adjustments_no_truncate ON adjustments;
DROP TRIGGER adjustments_append_only ON adjustments;
DROP TRIGGER redemptions_no_truncate ON redemptions;
DROP TRIGGER redemptions_append_only ON redemptions;
