-- Current version of every resource, and every version ever written.
CREATE TABLE resource (
  resource_type text NOT NULL,
  id            text NOT NULL,
  version_id    integer NOT NULL,
  last_updated  timestamptz NOT NULL,
  deleted       boolean NOT NULL DEFAULT false,
  owner         text,          -- Organization id that wrote it; NULL = gateway directory data
  patient_id    text,          -- Patient compartment the resource belongs to, if any
  content       jsonb,
  PRIMARY KEY (resource_type, id)
);
CREATE INDEX resource_type_updated ON resource (resource_type, last_updated, id);
CREATE INDEX resource_patient ON resource (patient_id) WHERE patient_id IS NOT NULL;

CREATE TABLE resource_version (
  resource_type text NOT NULL,
  id            text NOT NULL,
  version_id    integer NOT NULL,
  last_updated  timestamptz NOT NULL,
  deleted       boolean NOT NULL DEFAULT false,
  owner         text,
  patient_id    text,
  method        text NOT NULL,  -- POST, PUT or DELETE: the interaction that made the version
  content       jsonb,
  PRIMARY KEY (resource_type, id, version_id)
);
CREATE INDEX resource_version_updated ON resource_version (last_updated);
CREATE INDEX resource_version_type_updated ON resource_version (resource_type, last_updated);

-- Search index rows, extracted from the current version on every write (one table per parameter kind).
CREATE TABLE sp_token (
  resource_type text NOT NULL, id text NOT NULL, param text NOT NULL,
  system text, value text, text_norm text
);
CREATE INDEX sp_token_value ON sp_token (resource_type, param, value, system);
CREATE INDEX sp_token_resource ON sp_token (resource_type, id);

CREATE TABLE sp_string (
  resource_type text NOT NULL, id text NOT NULL, param text NOT NULL,
  norm text NOT NULL, exact text NOT NULL
);
CREATE INDEX sp_string_norm ON sp_string (resource_type, param, norm text_pattern_ops);
CREATE INDEX sp_string_resource ON sp_string (resource_type, id);

CREATE TABLE sp_date (
  resource_type text NOT NULL, id text NOT NULL, param text NOT NULL,
  lo timestamptz NOT NULL, hi timestamptz NOT NULL
);
CREATE INDEX sp_date_lo ON sp_date (resource_type, param, lo);
CREATE INDEX sp_date_resource ON sp_date (resource_type, id);

CREATE TABLE sp_number (
  resource_type text NOT NULL, id text NOT NULL, param text NOT NULL,
  value numeric NOT NULL, system text, code text
);
CREATE INDEX sp_number_value ON sp_number (resource_type, param, value);
CREATE INDEX sp_number_resource ON sp_number (resource_type, id);

CREATE TABLE sp_reference (
  resource_type text NOT NULL, id text NOT NULL, param text NOT NULL,
  target_type text, target_id text, target text NOT NULL
);
CREATE INDEX sp_reference_target ON sp_reference (resource_type, param, target_id, target_type);
CREATE INDEX sp_reference_reverse ON sp_reference (target_type, target_id);
CREATE INDEX sp_reference_resource ON sp_reference (resource_type, id);

CREATE TABLE sp_uri (
  resource_type text NOT NULL, id text NOT NULL, param text NOT NULL,
  value text NOT NULL
);
CREATE INDEX sp_uri_value ON sp_uri (resource_type, param, value);
CREATE INDEX sp_uri_resource ON sp_uri (resource_type, id);

-- AuditEvents live apart from other resources: append-only, hash-chained by a sealer in commit order.
CREATE TABLE audit_event (
  seq           bigserial PRIMARY KEY,
  id            text NOT NULL UNIQUE,
  recorded      timestamptz NOT NULL,
  action        text,
  outcome       text,
  agent_org     text,          -- Organization the acting client belongs to
  agent_client  text,
  owner         text,          -- Organization whose data was touched
  patient_id    text,
  entity        text[],        -- references of the resources involved
  purpose       text,
  content       jsonb NOT NULL,
  chain_pos     bigint UNIQUE,
  hash          text
);
CREATE INDEX audit_event_recorded ON audit_event (recorded);
CREATE INDEX audit_event_patient ON audit_event (patient_id, recorded) WHERE patient_id IS NOT NULL;
CREATE INDEX audit_event_unsealed ON audit_event (seq) WHERE chain_pos IS NULL;

-- Transactional outbox: one row per committed change, moved into the queue by the relay.
CREATE TABLE outbox (
  seq           bigserial PRIMARY KEY,
  created_at    timestamptz NOT NULL DEFAULT now(),
  resource_type text NOT NULL,
  id            text NOT NULL,
  version_id    integer NOT NULL,
  action        text NOT NULL,   -- create, update or delete
  owner         text,
  patient_id    text,
  relayed_at    timestamptz
);
CREATE INDEX outbox_pending ON outbox (seq) WHERE relayed_at IS NULL;

-- Transaction Bundles already applied, by sender and Bundle.identifier: a re-sent Bundle changes nothing.
CREATE TABLE bundle_receipt (
  owner       text NOT NULL,
  identifier  text NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now(),
  response    jsonb,
  PRIMARY KEY (owner, identifier)
);
