-- +goose Up
-- SQLite twin of postgres/00017: delivered webhook deliveries, oldest first, for pruning.
CREATE INDEX webhook_deliveries_delivered ON webhook_deliveries (delivered_at) WHERE status = 'delivered';

-- +goose Down
DROP INDEX webhook_deliveries_delivered;
