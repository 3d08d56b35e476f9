import { DIRECTORY_TYPES, isDirectoryType } from './resource-types.js';
import type { SqlParams } from './sql.js';

/** Who is looking: the gateway administrator, or a client acting for one Organization. */
export interface Viewer {
  admin: boolean;
  organizationId?: string;
  purposeOfUse?: string;
  /** Set for break-glass (ETREAT with a reason): opens residents' data of facilities under agreement. */
  breakGlassReason?: string;
}

export const ADMIN_VIEWER: Viewer = { admin: true };

/**
 * SQL condition (on a row of `resource` or `resource_version` under `alias`) that is true when the viewer
 * may see that row: its own Organization's data; the shared directory (who is who: organizations,
 * practitioners, agreements; never anything in a patient's compartment), whoever wrote it; and another
 * owner's data about a patient while an active Consent recorded by that owner permits it (see
 * consentPermitsSql).
 */
export function visibilitySql(viewer: Viewer, alias: string, params: SqlParams): string {
  if (viewer.admin) return 'TRUE';
  if (!viewer.organizationId) return 'FALSE';
  const org = params.add(viewer.organizationId);
  const directory = params.add(DIRECTORY_TYPES);
  const emergency = viewer.purposeOfUse === 'ETREAT' && viewer.breakGlassReason ? ` OR ${agreementSql(alias, org)}` : '';
  return `(${alias}.owner = ${org} OR (${alias}.patient_id IS NULL AND ${alias}.resource_type = ANY(${directory}::text[]))
    OR (${alias}.patient_id IS NOT NULL AND (${consentPermitsSql(viewer, alias, org, params)}${emergency})))`;
}

/**
 * Break-glass: the row belongs to a facility (OrganizationAffiliation.organization) that has an active
 * 協力医療機関 agreement, current today, with the viewer (participatingOrganization); so the data is
 * about one of that facility's residents.
 */
function agreementSql(alias: string, org: string): string {
  return `EXISTS (SELECT 1 FROM resource a
      JOIN sp_reference fac ON fac.resource_type = a.resource_type AND fac.id = a.id AND fac.param = 'primary-organization'
      JOIN sp_reference med ON med.resource_type = a.resource_type AND med.id = a.id AND med.param = 'participating-organization'
    WHERE a.resource_type = 'OrganizationAffiliation' AND NOT a.deleted
      AND fac.target_type = 'Organization' AND fac.target_id = ${alias}.owner
      AND med.target_type = 'Organization' AND med.target_id = ${org}
      AND NOT EXISTS (SELECT 1 FROM sp_token t WHERE t.resource_type = a.resource_type AND t.id = a.id
        AND t.param = 'active' AND t.value = 'false')
      AND NOT EXISTS (SELECT 1 FROM sp_date p WHERE p.resource_type = a.resource_type AND p.id = a.id
        AND p.param = 'date' AND (p.lo > now() OR p.hi <= now())))`;
}

/**
 * A grant of an active Consent by the row's owner about the row's patient matches the viewer's
 * Organization, the row's type and the purpose of use, now; and no deny of the same Consent at the
 * same or a deeper level (an exception, more specific) matches too: the deepest matching provisions
 * decide, deny winning a tie. Grants are materialised in consent_grant when a Consent is written.
 */
function consentPermitsSql(viewer: Viewer, alias: string, org: string, params: SqlParams): string {
  const purpose = params.add(viewer.purposeOfUse ?? DEFAULT_PURPOSE);
  const matches = (g: string) => `${g}.grantee IN (${org}, '*') AND ${g}.resource_type IN (${alias}.resource_type, '*')
      AND ${g}.purpose IN (${purpose}, '*') AND (${g}.period_start IS NULL OR ${g}.period_start <= now())
      AND (${g}.period_end IS NULL OR ${g}.period_end > now())`;
  return `EXISTS (SELECT 1 FROM consent_grant g
    WHERE g.patient_id = ${alias}.patient_id AND g.owner = ${alias}.owner AND g.permit AND ${matches('g')}
      AND NOT EXISTS (SELECT 1 FROM consent_grant d
        WHERE d.consent_id = g.consent_id AND NOT d.permit AND d.depth >= g.depth AND ${matches('d')}))`;
}

export const DEFAULT_PURPOSE = 'TREAT';

/** The owner-and-directory part of the rule for one row already in hand (no Consent lookup). */
export function canSee(viewer: Viewer, row: { resourceType: string; owner: string | null; patientId: string | null }): boolean {
  if (viewer.admin) return true;
  if (!viewer.organizationId) return false;
  return row.owner === viewer.organizationId || (row.patientId === null && isDirectoryType(row.resourceType));
}

/** Writing is for the owner only; directory data is the administrator's. */
export function canWrite(viewer: Viewer, row: { resourceType: string; owner: string | null }): boolean {
  if (viewer.admin) return true;
  return row.owner !== null && row.owner === viewer.organizationId;
}
