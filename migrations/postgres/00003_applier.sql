-- +goose Up
-- Receivers record events; the applier applies them later (DESIGN §2). An event is
-- 'recorded' until the applier marks it applied or quarantined, in the same transaction
-- as its effects. The partial index holds only the backlog, so claiming the oldest
-- recorded events stays cheap however large the inbox grows.
ALTER TABLE inbox DROP CONSTRAINT inbox_status_check;
ALTER TABLE inbox ADD CONSTRAINT inbox_status_check CHECK (status IN ('recorded', 'applied', 'quarantined'));
CREATE INDEX inbox_recorded ON inbox (id) WHERE status = 'recorded';

-- GET /v1/admin/events/{id} shows the entries an event produced.
CREATE INDEX journal_inbox ON journal (inbox_id) WHERE inbox_id IS NOT NULL;

-- +goose Down
DROP INDEX journal_inbox;
DROP INDEX inbox_recorded;
ALTER TABLE inbox DROP CONSTRAINT inbox_status_check;
ALTER TABLE inbox ADD CONSTRAINT inbox_status_check CHECK (status IN ('applied', 'quarantined'));
