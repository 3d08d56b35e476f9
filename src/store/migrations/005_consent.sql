-- What each active Consent permits and denies, flattened from its provisions when the Consent is
-- written (same statement), so that deciding visibility is an indexed lookup, not a Consent scan.
-- A row opens (permit) or closes (deny) the data of `owner` (the Consent's recorder) about
-- `patient_id` to `grantee` for `resource_type` and `purpose` ('*' = any) during [period_start, period_end).
-- Nested provisions are exceptions: a deeper matching row of the same Consent overrides a shallower one.
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
  provision     text NOT NULL      -- FHIRPath of the provision that made the row, e.g. Consent.provision.provision[0]
);
CREATE INDEX consent_grant_lookup ON consent_grant (patient_id, owner, grantee);
CREATE INDEX consent_grant_consent ON consent_grant (consent_id);
