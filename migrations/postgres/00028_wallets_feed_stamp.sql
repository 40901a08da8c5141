-- +goose Up
-- A wallet made by an event that earned nothing was never stamped for the balance feed
-- (feed_seq 0, which sorts before every cursor), so a publisher past its first pass never
-- learned of it. Tally now stamps a wallet when it makes it; this stamps those made
-- before with this migration's transaction id, as a write of them would, so the feed
-- lists them once (with their zero balances). A scan of `wallets`.
UPDATE wallets SET feed_seq = pg_current_xact_id()::text::bigint WHERE feed_seq = 0;

-- +goose Down
-- The stamps stay: they only make the feed list those wallets once more.
SELECT 1;
