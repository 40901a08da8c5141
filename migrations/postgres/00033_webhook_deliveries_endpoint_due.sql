-- +goose Up
-- A webhook worker asks once a second, on every replica, which of its endpoints have a
-- delivery due (store.DueEndpoints). Its test per endpoint, "is anything of this endpoint
-- due", had webhook_deliveries_due (next_attempt_at) or the per-user pending index to go
-- by, so it read the outbox's due rows, or the endpoint's pending ones, one by one: with
-- one endpoint working through a backlog of 20,000 due deliveries and 1,000 endpoints
-- listed, about 20 million rows and 2 s a poll
-- (TestWebhookPollWithABacklogReadsOneEntryPerEndpoint). This index answers it in one
-- descent per endpoint.
--
-- Its key is an expression, the endpoint's property and url joined, so that only a query
-- written with that expression (DueEndpoints) can use it. An index on (property,
-- endpoint, next_attempt_at) matched every lookup of one user's deliveries (property,
-- endpoint, user_id) too, and on an outbox not yet analyzed Postgres chose it for them
-- and read all the endpoint's pending rows per user: the applier's lookup of its users'
-- first deliveries took seconds.
--
-- Building it holds the outbox's writers (the applier's transactions that write
-- deliveries, the webhook workers' recordings) while it reads the whole outbox
-- (delivered deliveries are kept 30 days) and sorts the pending ones: on a small
-- machine about 0.5 s per million rows read and 2 s more per million pending (review
-- helper 209). It costs each delivery one more index entry as it is written and as its
-- status or due time changes.
SET LOCAL lock_timeout = '3s';
CREATE INDEX webhook_deliveries_endpoint_due ON webhook_deliveries ((property || ' ' || endpoint), next_attempt_at) WHERE status = 'pending';

-- +goose Down
SET LOCAL lock_timeout = '3s';
DROP INDEX webhook_deliveries_endpoint_due;
