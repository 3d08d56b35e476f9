-- The hash chain moves out of audit_event into a table of its own. Sealing used to write chain_pos and
-- hash into each AuditEvent: a second copy of a row of about 2 KB (a notification's), four index entries
-- again, and a trigger comparing every column of the old and new row to prove nothing else changed.
-- Now an AuditEvent is written once and never touched; sealing appends a small link row instead.
CREATE TABLE audit_chain (
  position bigint PRIMARY KEY,
  seq      bigint NOT NULL UNIQUE,  -- the audit_event this link seals
  hash     text NOT NULL            -- sha256 over the previous link's hash and the entry's stored columns
);
-- Entries stored but not yet sealed, in the order the sealer takes them (seq, then commit order).
CREATE TABLE audit_unsealed (seq bigint PRIMARY KEY);

INSERT INTO audit_chain (position, seq, hash) SELECT chain_pos, seq, hash FROM audit_event WHERE chain_pos IS NOT NULL;
INSERT INTO audit_unsealed (seq) SELECT seq FROM audit_event WHERE chain_pos IS NULL;

DROP TRIGGER audit_event_append_only ON audit_event;
DROP INDEX audit_event_unsealed;
ALTER TABLE audit_event DROP COLUMN chain_pos, DROP COLUMN hash;

-- Stored AuditEvents and chain links can never be changed or deleted.
CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    RAISE EXCEPTION '% rows cannot be changed', TG_TABLE_NAME;
  END IF;
  RAISE EXCEPTION '% rows cannot be deleted', TG_TABLE_NAME;
END $$;
CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event
  FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only();
CREATE TRIGGER audit_chain_append_only BEFORE UPDATE OR DELETE ON audit_chain
  FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only();
CREATE TRIGGER audit_chain_no_truncate BEFORE TRUNCATE ON audit_chain
  FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only();

-- Whatever writes an AuditEvent, it waits for the sealer: one statement-level insert per statement.
CREATE FUNCTION audit_event_await_seal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO audit_unsealed (seq) SELECT seq FROM added;
  RETURN NULL;
END $$;
CREATE TRIGGER audit_event_await_seal AFTER INSERT ON audit_event REFERENCING NEW TABLE AS added
  FOR EACH STATEMENT EXECUTE FUNCTION audit_event_await_seal();
