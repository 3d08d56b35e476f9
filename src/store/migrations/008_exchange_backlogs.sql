-- The exchange's backlogs swing from empty to most of a table within minutes: pending deliveries in a
-- fan-out or while an endpoint is down, unmatched changes after a queue outage. Statistics sampled in
-- a quiet moment would tell the planner that pending deliveries and unmatched changes are rare, and it
-- would then read any of the pending-only (or unmatched-only) indexes end to end instead of the one
-- that matches a statement's keys. Without statistics on these columns the planner assumes a small,
-- constant share and picks indexes by their keys.
ALTER TABLE delivery ALTER COLUMN status SET STATISTICS 0;
ALTER TABLE outbox ALTER COLUMN matched_at SET STATISTICS 0;

-- A delivery waits while an earlier change about the same patient is not matched yet. After a queue
-- outage thousands of changes may be unmatched; this index answers "any earlier unmatched change of
-- this stream?" with one probe instead of a walk over the whole backlog (the expression is the
-- delivery's order key).
CREATE INDEX outbox_unmatched_stream ON outbox ((COALESCE(patient_id, resource_type || '/' || id)), seq) WHERE matched_at IS NULL;
