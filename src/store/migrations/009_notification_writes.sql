-- Every notification inserts a delivery row and rewrites it when it settles, so each index on the table
-- is paid twice per notification. Two pending-only indexes had no statement of their own: stale pending
-- deliveries (the reconciler) are found through delivery_by_status in id order, and nothing looks
-- pending deliveries up by change. Worse, they misled the planner: settlement, asked for 200 ids that
-- must be pending, read all of delivery_stale (every pending row) and compared each with the 200 ids,
-- since the index's predicate matched the statement's and without statistics on status the planner
-- takes pending rows for rare; in a fan-out with 20,000 pending that was most of a settlement's time.
DROP INDEX delivery_stale;
DROP INDEX delivery_change;
-- Most deliveries end delivered and are never looked up by that status (a listing of delivered ones
-- walks the key backwards): the status index keeps the others only, so a settlement adds no entry to it.
DROP INDEX delivery_by_status;
CREATE INDEX delivery_by_status ON delivery (status, id) WHERE status <> 'delivered';

-- Matching asks which subscriptions a resource version has already notified (a second run of a change
-- adds nothing) and which ones earlier versions of the resource notified: by the resource, not by the
-- subscription. With the subscription first in the key each such look-up read the whole index (or the
-- table: 8,450 rows read per change in a fan-out). Same unique key, resource first.
DROP INDEX delivery_event_once;
CREATE UNIQUE INDEX delivery_event_once ON delivery (resource_type, resource_id, version_id, subscription_id) WHERE kind = 'event';

-- A notification's AuditEvent is about 2 KB of JSON, just over the size past which PostgreSQL
-- compresses a row; compressing it on insert and decompressing it when the chain is sealed cost more
-- CPU than the disk it saves. Rows up to a page are kept as they are.
ALTER TABLE audit_event SET (toast_tuple_target = 8160);
