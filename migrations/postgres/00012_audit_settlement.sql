-- +goose Up
-- A settlement run started by hand (the console's "settle now", `tally settle`) is
-- written to the audit log with the run's start: action 'settlement'. The audit table is
-- small (a row per admin action), so the check is validated at once.
ALTER TABLE audit DROP CONSTRAINT audit_action_check;
ALTER TABLE audit ADD CONSTRAINT audit_action_check
    CHECK (action IN ('adjustment', 'reversal', 'replay', 'trueup', 'booked_revenue', 'webhook_retry', 'settlement'));

-- +goose Down
-- The audit log is append-only, so 'settlement' rows written since stay; the older check
-- holds for new rows only.
ALTER TABLE audit DROP CONSTRAINT audit_action_check;
ALTER TABLE audit ADD CONSTRAINT audit_action_check
    CHECK (action IN ('adjustment', 'reversal', 'replay', 'trueup', 'booked_revenue', 'webhook_retry')) NOT VALID;
