-- +goose Up
-- SQLite twin of postgres/00018: redemptions, adjustments and reversals are append-only.
-- +goose StatementBegin
CREATE TRIGGER redemptions_no_update BEFORE UPDATE ON redemptions BEGIN SELECT RAISE(ABORT, 'table redemptions is append-only'); END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER redemptions_no_delete BEFORE DELETE ON redemptions BEGIN SELECT RAISE(ABORT, 'table redemptions is append-only'); END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER adjustments_no_update BEFORE UPDATE ON adjustments BEGIN SELECT RAISE(ABORT, 'table adjustments is append-only'); END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER adjustments_no_delete BEFORE DELETE ON adjustments BEGIN SELECT RAISE(ABORT, 'table adjustments is append-only'); END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER reversals_no_update BEFORE UPDATE ON reversals BEGIN SELECT RAISE(ABORT, 'table reversals is append-only'); END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER reversals_no_delete BEFORE DELETE ON reversals BEGIN SELECT RAISE(ABORT, 'table reversals is append-only'); END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER reversals_no_delete;
DROP TRIGGER reversals_no_update;
DROP TRIGGER adjustments_no_delete;
DROP TRIGGER adjustments_no_update;
DROP TRIGGER redemptions_no_delete;
DROP TRIGGER redemptions_no_update;
