-- +goose Up
-- SQLite twin of postgres/00028: wallets never stamped for the balance feed (feed_seq 0)
-- take the next number of its counter, as a write of them would.
UPDATE feed_counter SET seq = seq + 1 WHERE id = 1 AND EXISTS (SELECT 1 FROM wallets WHERE feed_seq = 0);
UPDATE wallets SET feed_seq = (SELECT seq FROM feed_counter WHERE id = 1) WHERE feed_seq = 0;

-- +goose Down
-- The stamps stay: they only make the feed list those wallets once more.
SELECT 1;
