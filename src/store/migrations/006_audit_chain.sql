-- AuditEvents are append-only. Once stored, a row may only be sealed into the hash chain (chain_pos
-- and hash set once, nothing else changed); it can never be changed again or deleted.
CREATE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'audit_event rows cannot be deleted';
  END IF;
  IF OLD.chain_pos IS NOT NULL
     OR (NEW.id, NEW.recorded, NEW.action, NEW.outcome, NEW.agent_org, NEW.agent_client, NEW.owner, NEW.patient_id,
         NEW.entity, NEW.purpose, NEW.content, NEW.seq)
        IS DISTINCT FROM
        (OLD.id, OLD.recorded, OLD.action, OLD.outcome, OLD.agent_org, OLD.agent_client, OLD.owner, OLD.patient_id,
         OLD.entity, OLD.purpose, OLD.content, OLD.seq) THEN
    RAISE EXCEPTION 'audit_event rows cannot be changed';
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event
  FOR EACH ROW EXECUTE FUNCTION audit_event_append_only();
