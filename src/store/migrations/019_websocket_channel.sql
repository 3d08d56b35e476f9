-- The Backport IG's websocket channel. A client asks `Subscription/{id}/$get-ws-binding-token` for a
-- token for one or more of its subscriptions (kept here only as its SHA-256, used once, short-lived), opens the gateway's WebSocket and binds
-- with it. Each bound connection is a row its gateway keeps fresh (seen_at), so a worker in any process
-- can tell whether anyone is listening. A notification for a bound subscription is announced on the
-- channel renkei_websocket with its body, or, when too large for an announcement, kept here briefly and
-- announced by its id; the gateways holding its connections send it.
CREATE TABLE websocket_token (
  token_hash text NOT NULL,
  subscription_id text NOT NULL,
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (token_hash, subscription_id)
);

CREATE TABLE websocket_binding (
  id text PRIMARY KEY,
  subscription_id text NOT NULL,
  bound_at timestamptz NOT NULL DEFAULT now(),
  seen_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX websocket_binding_subscription ON websocket_binding (subscription_id, seen_at);

CREATE TABLE websocket_message (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  subscription_id text NOT NULL,
  body text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX websocket_message_created ON websocket_message (created_at);
