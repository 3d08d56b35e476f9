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
 * may see that row: its own Organization's data, and the shared directory (who is who: organizations,
 * practitioners, agreements; never anything in a patient's compartment), whoever wrote it.
 */
export function visibilitySql(viewer: Viewer, alias: string, params: SqlParams): string {
  if (viewer.admin) return 'TRUE';
  if (!viewer.organizationId) return 'FALSE';
  const org = params.add(viewer.organizationId);
  const directory = params.add(DIRECTORY_TYPES);
  return `(${alias}.owner = ${org} OR (${alias}.patient_id IS NULL AND ${alias}.resource_type = ANY(${directory}::text[])))`;
}

/** The same rule for one row already in hand. */
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
