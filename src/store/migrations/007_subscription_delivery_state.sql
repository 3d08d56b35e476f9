-- Consecutive failed notification attempts of a subscription (reset by any delivered one): after
-- RENKEI_SUBSCRIPTION_ERROR_AFTER of them, or a dead letter, the subscription goes to error.
ALTER TABLE subscription_state ADD COLUMN failures integer NOT NULL DEFAULT 0;
-- The purpose of use its notifications are decided for (Consent provisions name purposes).
ALTER TABLE subscription_state ADD COLUMN purpose text NOT NULL DEFAULT 'TREAT';

-- A commit that adds outbox rows wakes the relays listening on renkei_outbox at once (one
-- notification per transaction), so they need not poll.
CREATE FUNCTION outbox_wake() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('renkei_outbox', '');
  RETURN NULL;
END $$;
CREATE TRIGGER outbox_wake AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION outbox_wake();
