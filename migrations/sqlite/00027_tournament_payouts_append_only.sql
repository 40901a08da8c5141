-- +goose Up
-- SQLite twin of postgres/00027: a closed window's prize rows and final board are
-- append-only.
-- +goose StatementBegin
CREATE TRIGGER tournament_prizes_no_update BEFORE UPDATE ON tournament_prizes BEGIN SELECT RAISE(ABORT, 'table tournament_prizes is append-only'); END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER tournament_prizes_no_delete BEFORE DELETE ON tournament_prizes BEGIN SELECT RAISE(ABORT, 'table tournament_prizes is append-only'); END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER tournament_results_no_update BEFORE UPDATE ON tournament_results BEGIN SELECT RAISE(ABORT, 'table tournament_results is append-only'); END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER tournament_results_no_delete BEFORE DELETE ON tournament_results BEGIN SELECT RAISE(ABORT, 'table tournament_results is append-only'); END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER tournament_results_no_delete;
DROP TRIGGER tournament_results_no_update;
DROP TRIGGER tournament_prizes_no_delete;
DROP TRIGGER tournament_prizes_no_update;
