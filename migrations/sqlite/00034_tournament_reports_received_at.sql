-- +goose Up
-- SQLite twin of postgres/00034: the receipt and time of the copy of a score report
-- that holds its pin.
ALTER TABLE tournament_reports ADD COLUMN received_at DATETIME;
ALTER TABLE tournament_reports ADD COLUMN made_at DATETIME;

-- +goose Down
ALTER TABLE tournament_reports DROP COLUMN made_at;
ALTER TABLE tournament_reports DROP COLUMN received_at;
