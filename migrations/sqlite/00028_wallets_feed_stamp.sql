-- +goose Up
-- SQLite twin of postgres/00028: wallets never stamped for the balance feed (feed_seq 0)
-- take the next number of its counter, as a write of them would, and a trigger stamps a
-- wallet an older binary makes without a stamp (a column default cannot read the
-- counter). Tally's own inserts stamp, so the trigger does not fire for them.
UPDATE feed_counter SET seq = seq + 1 WHERE id = 1 AND EXISTS (SELECT 1 FROM wallets WHERE feed_seq = 0);
UPDATE wallets SET feed_seq = (SELECT seq FROM feed_counter WHERE id = 1) WHERE feed_seq = 0;
-- +goose StatementBegin
CREATE TRIGGER wallets_feed_stamp AFTER INSERT ON wallets WHEN NEW.feed_seq = 0 BEGIN
    UPDATE feed_counter SET seq = seq + 1 WHERE id = 1;
    UPDATE wallets SET feed_seq = (SELECT seq FROM feed_counter WHERE id = 1) WHERE id = NEW.id;
END;
-- +goose StatementEnd

-- +goose Down
-- The stamps stay: they only made the feed list those wallets once more.
DROP TRIGGER wallets_feed_stamp;
