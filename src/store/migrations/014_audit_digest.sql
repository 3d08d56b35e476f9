-- Sealing read every unsealed AuditEvent whole (about 2 KB for a notification's) only to hash it. The
-- writer, which has the entry in hand, now stores the sha256 digest of the entry's columns with it, the
-- trigger queues it with the entry, and the sealer links digests without reading any entry. Links made
-- before keep their form (a hash over the previous link and the entry's columns); verification tells
-- them apart by link_form. An entry written without a digest is digested by the sealer from its row.
ALTER TABLE audit_event ADD COLUMN digest text;
ALTER TABLE audit_unsealed ADD COLUMN digest text;
ALTER TABLE audit_chain ADD COLUMN link_form text NOT NULL DEFAULT 'columns' CHECK (link_form IN ('columns', 'digest'));
ALTER TABLE audit_chain ALTER COLUMN link_form SET DEFAULT 'digest';

CREATE OR REPLACE FUNCTION audit_event_await_seal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO audit_unsealed (seq, digest) SELECT seq, digest FROM added;
  RETURN NULL;
END $$;
