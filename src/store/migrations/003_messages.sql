-- Every inbound message (HL7 v2, care-plan CSV, care records) as received: the bytes as sent, who sent
-- it, what became of it. A message is never dropped: rejected ones are kept with their error.
CREATE TABLE ingest_message (
  id            bigserial PRIMARY KEY,
  kind          text NOT NULL,          -- hl7v2 | careplan-csv | care-records
  transport     text NOT NULL,          -- http | mllp | replay
  sender_org    text,                   -- Organization id; NULL when the sender could not be identified
  sender_client text,                   -- registered client id
  control_id    text,                   -- MSH-10; for files the SHA-256 of the bytes
  message_type  text,                   -- ADT^A08, RDE^O11, careplan-csv/table2, …
  message_time  timestamptz,            -- MSH-7, or the time in the file name
  raw           bytea NOT NULL,
  content_type  text,
  file_name     text,
  status        text NOT NULL CHECK (status IN ('received', 'mapped', 'rejected', 'duplicate')),
  resources     text[] NOT NULL DEFAULT '{}',   -- Type/id/_history/n written
  error         jsonb,                  -- the problems reported (ERR segments / OperationOutcome issues)
  ack_code      text,                   -- AA | AE | AR (HL7)
  duplicate_of  bigint,
  attempts      integer NOT NULL DEFAULT 0,
  received_at   timestamptz NOT NULL DEFAULT now(),
  processed_at  timestamptz
);
-- The same control id from the same sender is applied once: a second one becomes a duplicate. A rejected
-- message does not hold its control id, so the corrected message may be sent again under it.
CREATE UNIQUE INDEX ingest_message_applied ON ingest_message (sender_org, kind, control_id) WHERE status = 'mapped';
-- Retention pruning and listing.
CREATE INDEX ingest_message_received ON ingest_message (received_at);
CREATE INDEX ingest_message_sender ON ingest_message (sender_org, received_at DESC);

-- For each resource written from a message, the time of the newest message that wrote it: an older
-- message arriving later must not roll the resource back.
CREATE TABLE ingest_resource_clock (
  resource_type text NOT NULL,
  resource_id   text NOT NULL,
  message_time  timestamptz NOT NULL,
  message_id    bigint,
  PRIMARY KEY (resource_type, resource_id)
);

-- Which registered client an MLLP connection acts for, by the MSH-4 sending facility and MSH-3 sending
-- application it sends (application '' = any application of that facility).
CREATE TABLE mllp_sender (
  sending_facility    text NOT NULL,
  sending_application text NOT NULL DEFAULT '',
  client_id           text NOT NULL,
  organization_id     text NOT NULL,
  remote_address      text,             -- when set, only connections from this address may use the mapping
  created             timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (sending_facility, sending_application)
);
