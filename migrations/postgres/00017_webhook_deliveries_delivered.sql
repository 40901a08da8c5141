-- +goose Up
-- Deliveries are kept 30 days after they were delivered, then removed (app.RunWebhooks,
-- store.PruneDeliveries): the table would otherwise grow by a row per notification for
-- ever. This index finds the oldest delivered ones without reading the rest. Pending and
-- failed deliveries are kept: they still need an operator or a retry.
CREATE INDEX webhook_deliveries_delivered ON webhook_deliveries (delivered_at) WHERE status = 'delivered';

-- +goose Down
DROP INDEX webhook_deliveries_delivered;
