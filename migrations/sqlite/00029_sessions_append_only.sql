-- +goose Up
-- SQLite twin of postgres/00029: session records are append-only.
-- +goose StatementBegin
CREATE TRIGGER sessions_no_update BEFORE UPDATE ON sessions BEGIN SELECT RAISE(ABORT, 'table sessions is append-only'); END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER sessions_no_delete BEFORE DELETE ON sessions BEGIN SELECT RAISE(ABORT, 'table sessions is append-only'); END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER sessions_no_delete;
DROP TRIGGER sessions_no_update;
