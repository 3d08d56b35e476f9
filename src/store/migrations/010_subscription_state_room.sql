-- Every change a subscription is notified of bumps its event counter (eventsSinceSubscriptionStart), so
-- in a fan-out each subscription_state row is rewritten once per change. On full pages the new version
-- went to another page: a new entry in each of the table's indexes (one of them GIN) and a trail of
-- dead versions every look-up by id then walked (about 40 pages read per look-up during a fan-out).
-- Room left on each page keeps the new version beside the old one (a HOT update: no index entry, and
-- the page prunes its dead versions itself). Existing rows are written again so they move to such pages.
ALTER TABLE subscription_state SET (fillfactor = 20);
CREATE TEMP TABLE subscription_state_moved ON COMMIT DROP AS SELECT * FROM subscription_state;
DELETE FROM subscription_state;
INSERT INTO subscription_state SELECT * FROM subscription_state_moved;
