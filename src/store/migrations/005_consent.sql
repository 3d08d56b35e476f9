-- What each active Consent permits and denies, flattened from its provisions when the Consent is
-- written (same statement), so that deciding visibility is an indexed lookup, not a Consent scan.
-- A row opens (permit) or closes (deny) the data of `owner` (the Consent's recorder) about
-- `patient_id` to `grantee` for `resource_type` and `purpose` ('*' = any) during [period_start, period_end).
-- Nested provisions are exceptions: a deeper matching row of the same Consent overrides a shallower one,
-- deny winning a tie. A `conditional` row also restricts the data itself: its clinical date within
-- [data_start, data_end) (dataPeriod), every code in `codes` and every security label in `labels`
-- ('system|code'; an empty system matches any system).
CREATE TABLE consent_grant (
  consent_id    text NOT NULL,
  owner         text NOT NULL,
  patient_id    text NOT NULL,
  grantee       text NOT NULL,
  resource_type text NOT NULL,
  purpose       text NOT NULL,
  permit        boolean NOT NULL,
  depth         integer NOT NULL,
  period_start  timestamptz,
  period_end    timestamptz,
  data_start    timestamptz,
  data_end      timestamptz,
  codes         text[],
  labels        text[],
  conditional   boolean NOT NULL,
  provision     text NOT NULL      -- FHIRPath of the provision that made the row, e.g. Consent.provision.provision[0]
);
CREATE INDEX consent_grant_lookup ON consent_grant (patient_id, owner, grantee);
CREATE INDEX consent_grant_consent ON consent_grant (consent_id);

-- The search parameter holding each type's clinically relevant date, which a dataPeriod bounds.
-- A type without one (Patient) is outside every dataPeriod.
CREATE TABLE consent_data_date (
  resource_type text PRIMARY KEY,
  param         text NOT NULL
);
INSERT INTO consent_data_date VALUES
  ('AllergyIntolerance', 'date'), ('Basic', 'created'), ('Bundle', 'timestamp'), ('CarePlan', 'date'), ('CareTeam', 'date'),
  ('Communication', 'sent'), ('CommunicationRequest', 'authored'), ('Composition', 'date'), ('Condition', 'recorded-date'),
  ('Consent', 'date'), ('DocumentReference', 'date'), ('Encounter', 'date'), ('Goal', 'start-date'),
  ('MedicationRequest', 'authoredon'), ('MedicationStatement', 'effective'), ('Observation', 'date'), ('Provenance', 'recorded');

-- The grant applies to this viewer (Organization), type and purpose of use, now.
CREATE FUNCTION consent_grant_applies(g consent_grant, p_type text, p_org text, p_purpose text) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT g.grantee IN (p_org, '*') AND g.resource_type IN (p_type, '*') AND g.purpose IN (p_purpose, '*')
    AND (g.period_start IS NULL OR g.period_start <= now()) AND (g.period_end IS NULL OR g.period_end > now())
$$;

-- The data of a row satisfies a conditional grant: clinical date within [data_start, data_end), every
-- code and every security label carried. Read from the search index, which describes the current
-- version: for a past version the answer is NULL (unknown), which no permit accepts and every deny does.
CREATE FUNCTION consent_content_matches(g consent_grant, p_type text, p_id text, p_version integer) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM resource cur WHERE cur.resource_type = p_type AND cur.id = p_id AND cur.version_id = p_version) THEN
    RETURN NULL;
  END IF;
  RETURN ((g.data_start IS NULL AND g.data_end IS NULL) OR EXISTS (
      SELECT 1 FROM sp_date dd JOIN consent_data_date cd ON cd.resource_type = dd.resource_type AND cd.param = dd.param
      WHERE dd.resource_type = p_type AND dd.id = p_id
        AND (g.data_start IS NULL OR dd.lo >= g.data_start) AND (g.data_end IS NULL OR dd.lo < g.data_end)))
    AND (g.codes IS NULL OR NOT EXISTS (SELECT 1 FROM unnest(g.codes) AS want(token) WHERE NOT EXISTS (
      SELECT 1 FROM sp_token t WHERE t.resource_type = p_type AND t.id = p_id AND t.param = 'code'
        AND t.value = substr(want.token, strpos(want.token, '|') + 1)
        AND (split_part(want.token, '|', 1) = '' OR t.system = split_part(want.token, '|', 1)))))
    AND (g.labels IS NULL OR NOT EXISTS (SELECT 1 FROM unnest(g.labels) AS want(token) WHERE NOT EXISTS (
      SELECT 1 FROM sp_token t WHERE t.resource_type = p_type AND t.id = p_id AND t.param = '_security'
        AND t.value = substr(want.token, strpos(want.token, '|') + 1)
        AND (split_part(want.token, '|', 1) = '' OR t.system = split_part(want.token, '|', 1)))));
END $$;

-- What permits the viewer to see another owner's row ('<consent id> <provision path>'), or NULL (default
-- deny): the deepest matching permit of an active Consent recorded by the row's owner about the row's
-- patient that no matching deny of the same Consent, at the same or a deeper level, overrides. The
-- deepest matching provisions decide, deny winning a tie; Consents are independent of each other.
CREATE FUNCTION consent_permit(p_owner text, p_patient text, p_type text, p_id text, p_version integer, p_org text, p_purpose text)
RETURNS text LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN (SELECT g.consent_id || ' ' || g.provision FROM consent_grant g
    WHERE g.patient_id = p_patient AND g.owner = p_owner AND g.grantee IN (p_org, '*') AND g.permit
      AND consent_grant_applies(g, p_type, p_org, p_purpose)
      AND (NOT g.conditional OR consent_content_matches(g, p_type, p_id, p_version))
      AND NOT EXISTS (SELECT 1 FROM consent_grant d
        WHERE d.consent_id = g.consent_id AND NOT d.permit AND d.depth >= g.depth AND consent_grant_applies(d, p_type, p_org, p_purpose)
          AND (NOT d.conditional OR consent_content_matches(d, p_type, p_id, p_version) IS NOT FALSE))
    ORDER BY g.depth DESC, g.consent_id LIMIT 1);
END $$;

-- Why a row stays closed: the deepest matching deny of any active Consent by its owner, or NULL.
CREATE FUNCTION consent_deny(p_owner text, p_patient text, p_type text, p_id text, p_version integer, p_org text, p_purpose text)
RETURNS text LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN (SELECT d.consent_id || ' ' || d.provision FROM consent_grant d
    WHERE d.patient_id = p_patient AND d.owner = p_owner AND d.grantee IN (p_org, '*') AND NOT d.permit
      AND consent_grant_applies(d, p_type, p_org, p_purpose)
      AND (NOT d.conditional OR consent_content_matches(d, p_type, p_id, p_version) IS NOT FALSE)
    ORDER BY d.depth DESC, d.consent_id LIMIT 1);
END $$;

-- Break-glass: the active 協力医療機関 agreement (OrganizationAffiliation with role kyoryoku-iryokikan,
-- not inactive, current today) between the row's owner, a facility (organization), and the viewer
-- (participatingOrganization), where the row is about one of the facility's own patients (it holds
-- the Patient record). Returns the agreement's id, or NULL.
CREATE FUNCTION kyoryoku_agreement(p_owner text, p_patient text, p_org text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM resource resident WHERE resident.resource_type = 'Patient' AND resident.id = p_patient
      AND resident.owner = p_owner AND NOT resident.deleted) THEN
    RETURN NULL;
  END IF;
  RETURN (SELECT a.id FROM sp_reference fac
      JOIN sp_reference med ON med.resource_type = fac.resource_type AND med.id = fac.id AND med.param = 'participating-organization'
      JOIN resource a ON a.resource_type = fac.resource_type AND a.id = fac.id AND NOT a.deleted
    WHERE fac.resource_type = 'OrganizationAffiliation' AND fac.param = 'primary-organization'
      AND fac.target_type = 'Organization' AND fac.target_id = p_owner
      AND med.target_type = 'Organization' AND med.target_id = p_org
      AND EXISTS (SELECT 1 FROM sp_token r WHERE r.resource_type = a.resource_type AND r.id = a.id AND r.param = 'role'
        AND r.system = 'http://renkei.jp/fhir/CodeSystem/affiliation-role' AND r.value = 'kyoryoku-iryokikan')
      AND NOT EXISTS (SELECT 1 FROM sp_token t WHERE t.resource_type = a.resource_type AND t.id = a.id
        AND t.param = 'active' AND t.value = 'false')
      AND NOT EXISTS (SELECT 1 FROM sp_date p WHERE p.resource_type = a.resource_type AND p.id = a.id
        AND p.param = 'date' AND (p.lo > now() OR p.hi <= now()))
    ORDER BY a.id LIMIT 1);
END $$;

-- AuditEvents are append-only. Once stored, a row may only be sealed into the hash chain (chain_pos
-- and hash set once, nothing else changed); it can never be changed again or deleted.
CREATE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('DELETE', 'TRUNCATE') THEN
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
CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event
  FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only();
