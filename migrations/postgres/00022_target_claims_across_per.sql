-- +goose Up
-- A target payment now also takes, where free, the target's claims under its other
-- `per`s (rewards.targetClaims), so a target switched to `per: once` does not pay a user
-- paid per day or per play before. Payments made before this migration took only their
-- own claim: give each user paid per day or per play the target's once claim, held by
-- the first such payment. (Target ids hold no ':'.)
INSERT INTO claims (property, user_id, claim, journal_id, created_at)
SELECT DISTINCT ON (property, user_id, split_part(claim, ':', 2))
       property, user_id, 'target:' || split_part(claim, ':', 2), journal_id, created_at
FROM claims
WHERE claim LIKE 'target:%:day:%' OR claim LIKE 'target:%:play:%'
ORDER BY property, user_id, split_part(claim, ':', 2), journal_id
ON CONFLICT (property, user_id, claim) DO NOTHING;

-- +goose Down
-- The once claims taken here cannot be told from those taken by payments: they stay.
SELECT 1;
