import { DIRECTORY_TYPES, isDirectoryType } from './resource-types.js';
import type { SqlParams } from './sql.js';

/** Who is looking: the gateway administrator, or a client acting for one Organization. */
export interface Viewer {
  admin: boolean;
  organizationId?: string;
  purposeOfUse?: string;
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
  return `(${alias}.owner = ${org} OR (${alias}.patient_id IS NULL AND ${alias}.resource_type = ANY(${directory}::text[]))
    OR (${alias}.patient_id IS NOT NULL AND ${consentPermitsSql(viewer, alias, org, params)}))`;
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
