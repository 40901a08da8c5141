-- +goose Up
-- A lot carries its wallet's property, so a settlement run finds the wallets with
-- matured lots of its own property (store/settle.go, eachBatch) instead of walking those
-- of every property and keeping its own: with 1,000 properties each run walked all of
-- them, a sweep took 49 s, and a scheduled run of an idle property could not tell it had
-- nothing to do without taking its lease and writing a run row.
--
-- lots_property (property, wallet_id, matures_at) is the walk's index. It replaces
-- lots_unsettled (matures_at, wallet_id), which no query has used since 00014, so the
-- applier's insert of a lot still writes three index entries.
--
-- A replica still running the binary before this migration (a rolling deploy) inserts
-- lots without a property: the column's default '' marks them, and the trigger fills in
-- the wallet's property, so settlement finds them. It fires only for those rows (the
-- WHEN clause is tested without calling the function).
--
-- The migration holds lots (the applier's writes, settlement, and the balance reads'
-- next_available_at) while it rewrites every unsettled lot and builds the index: about
-- 8 s per million unsettled lots on a small machine (README, the migrations' notes).
-- It gives up waiting for its lock on lots after 3 s and is tried again (store.Migrate):
-- behind a long transaction on lots (a `tally verify`, a settlement batch), the waiting
-- ALTER held every reader and writer of lots queued behind it, on every replica.
SET LOCAL lock_timeout = '3s';
ALTER TABLE lots ADD COLUMN property TEXT NOT NULL DEFAULT '';
UPDATE lots SET property = w.property FROM wallets w WHERE w.id = lots.wallet_id;

-- +goose StatementBegin
CREATE FUNCTION tally_lot_property() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.property := coalesce((SELECT property FROM wallets WHERE id = NEW.wallet_id), '');
    RETURN NEW;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER lots_property BEFORE INSERT ON lots
    FOR EACH ROW WHEN (NEW.property = '') EXECUTE FUNCTION tally_lot_property();

CREATE INDEX lots_property ON lots (property, wallet_id, matures_at) WHERE settlement_id IS NULL;
DROP INDEX lots_unsettled;

-- +goose Down
CREATE INDEX lots_unsettled ON lots (matures_at, wallet_id) WHERE settlement_id IS NULL;
DROP INDEX lots_property;
DROP TRIGGER lots_property ON lots;
DROP FUNCTION tally_lot_property();
ALTER TABLE lots DROP COLUMN property;
