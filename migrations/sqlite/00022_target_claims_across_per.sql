-- +goose Up
-- SQLite twin of postgres/00022: each user paid by a target per day or per play gets the
-- target's once claim, held by the first such payment. (Target ids hold no ':'; with
-- MIN, SQLite takes the other bare columns from the row holding the minimum.)
INSERT OR IGNORE INTO claims (property, user_id, claim, journal_id, created_at)
SELECT property, user_id, 'target:' || substr(claim, 8, instr(substr(claim, 8), ':') - 1), MIN(journal_id), created_at
FROM claims
WHERE claim LIKE 'target:%:day:%' OR claim LIKE 'target:%:play:%'
GROUP BY property, user_id, substr(claim, 8, instr(substr(claim, 8), ':') - 1);

-- +goose Down
-- The once claims taken here cannot be told from those taken by payments: they stay.
SELECT 1;
