-- +goose Up
-- lots_wallet, a wallet's unsettled lots, carries their maturity too, so the two reads
-- that go through it find what they look for in the index instead of on one heap page
-- per lot (a wallet's lots are written at different times and lie scattered):
--   - a balance's next_available_at (store/reads.go) is the first entry of the wallet's
--     range, in maturity order: one heap page read (for the amount's sign) instead of
--     one per unsettled lot. With ten lots per wallet the lookup read 13 buffers and now
--     reads 4.
--   - settlement's search for wallets with matured lots (store/settle.go, eachBatch)
--     tests matures_at in the index: an index-only scan where it visited every lot of
--     every wallet it walked (200,000 buffers for 20,000 wallets of ten lots each, now
--     773).
-- Settlement's claim (a DELETE by wallet and maturity) uses the same condition.
-- The index is built under a lock that holds writers to lots (the applier and
-- settlement) for the build's time, as 00010 and 00011 do; lots holds only unsettled
-- credits, so the build is short. The old index is dropped last.
CREATE INDEX lots_wallet_maturity ON lots (wallet_id, matures_at) WHERE settlement_id IS NULL;
DROP INDEX lots_wallet;
ALTER INDEX lots_wallet_maturity RENAME TO lots_wallet;

-- +goose Down
CREATE INDEX lots_wallet_plain ON lots (wallet_id) WHERE settlement_id IS NULL;
DROP INDEX lots_wallet;
ALTER INDEX lots_wallet_plain RENAME TO lots_wallet;
