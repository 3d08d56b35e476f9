import { agreementSql, consentPermitSql, consentPermitsSql, permitGranteesSql } from '../consent/sql.js';
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
export const DEFAULT_PURPOSE = 'TREAT';

export const isBreakGlass = (viewer: Viewer): boolean => viewer.purposeOfUse === 'ETREAT' && Boolean(viewer.breakGlassReason);

/**
 * SQL condition (on a row of `resource` or `resource_version` under `alias`) that is true when the viewer
 * may see that row: its own Organization's data; the shared directory (who is who: organizations,
 * practitioners, agreements; never anything in a patient's compartment), whoever wrote it; another
 * owner's data about a patient while an active Consent recorded by that owner permits it; and, for
 * break-glass, a facility's data about its residents under an active 協力医療機関 agreement.
 * Default deny: anything else is invisible, and callers filter with it before paging.
 */
export function visibilitySql(viewer: Viewer, alias: string, params: SqlParams): string {
  if (viewer.admin) return 'TRUE';
  if (!viewer.organizationId) return 'FALSE';
  const org = params.add(viewer.organizationId);
  const directory = params.add(DIRECTORY_TYPES);
  const purpose = params.add(viewer.purposeOfUse ?? DEFAULT_PURPOSE);
  const emergency = isBreakGlass(viewer) ? ` OR ${agreementSql(alias, org)} IS NOT NULL` : '';
  return `(${alias}.owner = ${org} OR (${alias}.patient_id IS NULL AND ${alias}.resource_type = ANY(${directory}::text[]))
    OR (${alias}.patient_id IS NOT NULL AND ${alias}.owner IS NOT NULL AND (${consentPermitsSql(alias, org, purpose)}${emergency})))`;
}

/**
 * SQL selecting (as `org`) the Organizations that may possibly see the row under `alias`, break-glass
 * aside: its owner, any Organization (`'*'`) for the shared directory, and the grantees of its owner's
 * permits about its patient (`'*'`: any recipient), whatever those permits' types, purposes, periods and
 * exceptions. A superset of visibilitySql's rule: it narrows whom to ask before that rule decides.
 */
export function possibleViewersSql(alias: string, params: SqlParams): string {
  const directory = params.add(DIRECTORY_TYPES);
  return `SELECT ${alias}.owner AS org
    UNION SELECT '*' WHERE ${alias}.patient_id IS NULL AND ${alias}.resource_type = ANY(${directory}::text[])
    UNION ${permitGranteesSql(alias)}`;
}

/**
 * SQL expression naming what let the viewer see another owner's row: `Consent/<id>` (the deepest
 * permitting provision's Consent) or, for break-glass, `OrganizationAffiliation/<id>`; NULL for the
 * viewer's own data, directory data and the administrator.
 */
export function disclosureBasisSql(viewer: Viewer, alias: string, params: SqlParams): string {
  if (viewer.admin || !viewer.organizationId) return 'NULL::text';
  const org = params.add(viewer.organizationId);
  const purpose = params.add(viewer.purposeOfUse ?? DEFAULT_PURPOSE);
  const consent = `'Consent/' || split_part(${consentPermitSql(alias, org, purpose)}, ' ', 1)`;
  const agreement = isBreakGlass(viewer) ? `, 'OrganizationAffiliation/' || ${agreementSql(alias, org)}` : '';
  return `CASE WHEN ${alias}.owner IS NULL OR ${alias}.owner = ${org} OR ${alias}.patient_id IS NULL THEN NULL
    ELSE COALESCE(${consent}${agreement}) END`;
}

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
