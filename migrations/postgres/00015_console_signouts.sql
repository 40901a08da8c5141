-- +goose Up
-- Console sessions are signed cookies (app/console_auth.go); signing out records the
-- session's nonce here until the session would have expired, so a copy of the cookie
-- taken before is refused on every replica. Rows past their expiry are removed by later
-- sign-outs.
CREATE TABLE console_signouts (
    nonce      TEXT        PRIMARY KEY,
    expires_at TIMESTAMPTZ NOT NULL
);

-- +goose Down
DROP TABLE console_signouts;
