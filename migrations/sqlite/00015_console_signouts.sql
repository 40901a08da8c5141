-- +goose Up
-- SQLite twin of postgres/00015: console sessions signed out before they expire.
CREATE TABLE console_signouts (
    nonce      TEXT     PRIMARY KEY,
    expires_at DATETIME NOT NULL
);

-- +goose Down
DROP TABLE console_signouts;
