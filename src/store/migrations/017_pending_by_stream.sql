-- Pending deliveries are found through delivery_stream, whose rows are exactly the pending ones; the
-- status index keeps the settled ones that are not delivered (dead letters, withheld, cancelled). A
-- notification thus adds one index entry less when it is matched, and a plan made before the table's
-- first statistics can no longer take the status index for a stream's look-up: "the earlier pending
-- deliveries of this subscription and patient" walked every pending row that way (140 ms seen at the
-- start of a fan-out) instead of one stream's few.
DROP INDEX delivery_by_status;
CREATE INDEX delivery_by_status ON delivery (status, id) WHERE status NOT IN ('delivered', 'pending');
