-- How many deliveries are pending swings from none to most of the table within minutes (a fan-out, an
-- endpoint down for an hour). Statistics sampled in a quiet moment would tell the planner that pending
-- rows are rare, and it would then read any of the pending-only indexes end to end instead of the one
-- that matches a statement's keys. Without statistics on the column the planner assumes a small,
-- constant share and picks indexes by their keys.
ALTER TABLE delivery ALTER COLUMN status SET STATISTICS 0;
