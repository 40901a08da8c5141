-- +goose Up
-- SQLite twin of postgres/00033: the poll of which endpoints have a delivery due finds an
-- endpoint's first due delivery in one descent of this index, not by reading its pending
-- rows.
CREATE INDEX webhook_deliveries_endpoint_due ON webhook_deliveries ((property || ' ' || endpoint), next_attempt_at) WHERE status = 'pending';

-- +goose Down
DROP INDEX webhook_deliveries_endpoint_due;
