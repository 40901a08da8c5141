-- +goose Up
-- SQLite twin of postgres/00014: a wallet's unsettled lots indexed with their maturity,
-- so a balance's next_available_at (store/balances.go, ORDER BY matures_at LIMIT 1) and
-- settlement's search for matured lots read the index in order instead of every lot.
DROP INDEX lots_wallet;
CREATE INDEX lots_wallet ON lots (wallet_id, matures_at) WHERE settlement_id IS NULL;

-- +goose Down
DROP INDEX lots_wallet;
CREATE INDEX lots_wallet ON lots (wallet_id) WHERE settlement_id IS NULL;
