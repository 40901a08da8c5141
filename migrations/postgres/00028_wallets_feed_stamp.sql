-- +goose Up
-- A wallet made by an event that earned nothing was never stamped for the balance feed
-- (feed_seq 0, which sorts before every cursor), so a publisher past its first pass never
-- learned of it. Tally now stamps a wallet when it makes it. The column's default does
-- it too, so a replica still running an older binary during a rolling deploy stamps the
-- wallets it makes; and the wallets made before are stamped with this migration's
-- transaction id, as a write of them would be, so the feed lists them once (with their
-- zero balances). The default is a change of the catalog only; the update is a scan of
-- `wallets` that holds the feed back (empty pages, nothing skipped) until it commits.
ALTER TABLE wallets ALTER COLUMN feed_seq SET DEFAULT pg_current_xact_id()::text::bigint;
UPDATE wallets SET feed_seq = pg_current_xact_id()::text::bigint WHERE feed_seq = 0;

-- +goose Down
-- The stamps stay: they only made the feed list those wallets once more.
ALTER TABLE wallets ALTER COLUMN feed_seq SET DEFAULT 0;
