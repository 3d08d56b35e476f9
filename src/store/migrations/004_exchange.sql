-- Exchange engine: what each Subscription is doing now, and every notification it owes or sent.
-- The Subscription resource says what was asked; subscription_state is the gateway's running state for it.
CREATE TABLE subscription_state (
  id                text PRIMARY KEY,           -- Subscription id
  owner             text,                       -- the subscriber: the Organization that wrote the Subscription
  version_id        integer NOT NULL,           -- the Subscription version this state follows
  kind              text NOT NULL,              -- criteria (R4) | topic (R5 Backport IG)
  status            text NOT NULL,              -- requested | active | error | off
  resource_types    text[] NOT NULL DEFAULT '{}', -- types whose changes can notify it
  events            bigint NOT NULL DEFAULT 0,  -- eventsSinceSubscriptionStart
  heartbeat_seconds integer,
  next_heartbeat_at timestamptz,
  end_at            timestamptz,
  last_error        text,
  updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscription_state_live ON subscription_state USING gin (resource_types) WHERE status IN ('active', 'error');
CREATE INDEX subscription_state_heartbeat ON subscription_state (next_heartbeat_at) WHERE next_heartbeat_at IS NOT NULL;
CREATE INDEX subscription_state_end ON subscription_state (end_at) WHERE end_at IS NOT NULL AND status <> 'off';

-- One row per notification: an event (one per subscription and resource version: its effect happens once),
-- a handshake or a heartbeat. Events of one subscription about one patient (or one resource outside any
-- patient compartment: order_key) are sent in change order: only the oldest pending one is queued; the
-- others wait (queued = false) until it settles. Status: pending | delivered | dead (the dead-letter list:
-- retries exhausted, replayable) | withheld (no longer visible to the subscriber at send time) | cancelled.
CREATE TABLE delivery (
  id               bigserial PRIMARY KEY,
  subscription_id  text NOT NULL,
  subscriber       text,
  kind             text NOT NULL,              -- event | handshake | heartbeat
  change_seq       bigint,                     -- outbox seq of the change
  resource_type    text,
  resource_id      text,
  version_id       integer,
  action           text,                       -- create | update | delete
  data_owner       text,
  patient_id       text,
  order_key        text,
  event_number     bigint,
  status           text NOT NULL DEFAULT 'pending',
  queued           boolean NOT NULL DEFAULT true,
  generation       integer NOT NULL DEFAULT 0, -- bumped whenever a new job is made for the row
  attempts         integer NOT NULL DEFAULT 0,
  last_error       text,
  last_http_status integer,
  changed_at       timestamptz,                -- when the change committed
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  delivered_at     timestamptz
);
CREATE UNIQUE INDEX delivery_event_once ON delivery (subscription_id, resource_type, resource_id, version_id) WHERE kind = 'event';
CREATE INDEX delivery_stream ON delivery (subscription_id, order_key, change_seq) WHERE status = 'pending';
CREATE INDEX delivery_change ON delivery (change_seq) WHERE status = 'pending';
CREATE INDEX delivery_by_subscription ON delivery (subscription_id, id);
CREATE INDEX delivery_by_status ON delivery (status, id);
CREATE INDEX delivery_events ON delivery (subscription_id, event_number) WHERE event_number IS NOT NULL;
CREATE INDEX delivery_stale ON delivery (updated_at) WHERE status = 'pending';

-- A change is matched once every subscription it notifies has its delivery row; until then later
-- notifications about the same patient wait for it.
ALTER TABLE outbox ADD COLUMN matched_at timestamptz;
CREATE INDEX outbox_unmatched ON outbox (seq) WHERE matched_at IS NULL;
