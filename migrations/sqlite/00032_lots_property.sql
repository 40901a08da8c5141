-- +goose Up
-- SQLite twin of postgres/00032: a lot carries its wallet's property, so a settlement
-- run walks the matured lots of its own property only. lots_property replaces the unused
-- lots_unsettled. A process still on the binary before this migration inserts lots
-- without a property (''); the trigger gives them their wallet's.
ALTER TABLE lots ADD COLUMN property TEXT NOT NULL DEFAULT '';
UPDATE lots SET property = coalesce((SELECT w.property FROM wallets w WHERE w.id = lots.wallet_id), '');
-- +goose StatementBegin
CREATE TRIGGER lots_property AFTER INSERT ON lots WHEN NEW.property = ''
BEGIN
    UPDATE lots SET property = coalesce((SELECT w.property FROM wallets w WHERE w.id = NEW.wallet_id), '')
        WHERE rowid = NEW.rowid;
END;
-- +goose StatementEnd
CREATE INDEX lots_property ON lots (property, wallet_id, matures_at) WHERE settlement_id IS NULL;
DROP INDEX lots_unsettled;

-- +goose Down
CREATE INDEX lots_unsettled ON lots (matures_at, wallet_id) WHERE settlement_id IS NULL;
DROP INDEX lots_property;
DROP TRIGGER lots_property;
ALTER TABLE lots DROP COLUMN property;
