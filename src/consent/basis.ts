import { disclosureBasisSql, type Viewer } from '../store/access.js';
import type { Queryable } from '../store/db.js';
import { SqlParams } from '../store/sql.js';

export interface DisclosedRow {
  resourceType: string;
  id: string;
  owner: string | null;
  patientId: string | null;
}

/** Rows the viewer sees although another Organization owns them: each is a disclosure. */
export function foreignRows<T extends DisclosedRow>(viewer: Viewer, rows: T[]): T[] {
  if (viewer.admin || !viewer.organizationId) return [];
  return rows.filter((r) => r.owner && r.patientId && r.owner !== viewer.organizationId);
}

/**
 * For disclosures already decided, what permitted each one (`Type/id` → `Consent/<id>` or, for
 * break-glass, `OrganizationAffiliation/<id>`), computed by the same conditions as visibility, in one
 * statement over the current rows.
 */
export async function disclosureBases(db: Queryable, viewer: Viewer, rows: DisclosedRow[]): Promise<Map<string, string>> {
  const foreign = foreignRows(viewer, rows);
  if (!foreign.length) return new Map();
  const params = new SqlParams();
  const types = params.add(foreign.map((r) => r.resourceType));
  const ids = params.add(foreign.map((r) => r.id));
  const { rows: found } = await db.query<{ resource_type: string; id: string; basis: string | null }>(
    `SELECT r.resource_type, r.id, ${disclosureBasisSql(viewer, 'r', params)} AS basis
     FROM resource r JOIN unnest(${types}::text[], ${ids}::text[]) AS k(t, i) ON r.resource_type = k.t AND r.id = k.i`,
    params.values,
  );
  return new Map(found.filter((f) => f.basis).map((f) => [`${f.resource_type}/${f.id}`, f.basis!]));
}
