import type { Parameters, ParametersParameter } from '@medplum/fhirtypes';
import { visibilitySql } from '../store/access.js';
import type { Queryable } from '../store/db.js';
import { SqlParams } from '../store/sql.js';

export interface AccessQuestion {
  /** The data owner asking (or undefined for the administrator: every owner). */
  owner?: string;
  patientId: string;
  actor: string;
  purpose: string;
}

interface GrantRow {
  consent_id: string;
  owner: string;
  resource_type: string;
  permit: boolean;
  depth: number;
  provision: string;
}

/**
 * Patient/{id}/$access: for each kind of data an owner holds about the patient, whether `actor` may see
 * it for `purpose` now, and the Consent provision that decided. "Permitted" is computed by the very
 * condition every read and search applies; the provision is the deepest matching one, for the record.
 */
export async function explainAccess(db: Queryable, q: AccessQuestion): Promise<Parameters> {
  const params = new SqlParams();
  const viewer = { admin: false, organizationId: q.actor, purposeOfUse: q.purpose };
  const { rows: kinds } = await db.query<{ resource_type: string; owner: string; permitted: boolean }>(
    `SELECT k.resource_type, k.owner, ${visibilitySql(viewer, 'k', params)} AS permitted
     FROM (SELECT DISTINCT resource_type, owner, patient_id FROM resource
           WHERE patient_id = ${params.add(q.patientId)} AND NOT deleted
             AND (${params.add(q.owner ?? null)}::text IS NULL OR owner = ${params.add(q.owner ?? null)})) k
     ORDER BY k.owner, k.resource_type`,
    params.values,
  );
  const { rows: grants } = await db.query<GrantRow>(
    `SELECT consent_id, owner, resource_type, permit, depth, provision FROM consent_grant
     WHERE patient_id = $1 AND grantee IN ($2, '*') AND purpose IN ($3, '*')
       AND (period_start IS NULL OR period_start <= now()) AND (period_end IS NULL OR period_end > now())
     ORDER BY depth DESC, permit`,
    [q.patientId, q.actor, q.purpose],
  );
  return {
    resourceType: 'Parameters',
    parameter: [
      { name: 'actor', valueReference: { reference: `Organization/${q.actor}` } },
      { name: 'purpose', valueCode: q.purpose },
      ...kinds.map((k) => decision(k, grants, q.actor)),
    ],
  };
}

function decision(kind: { resource_type: string; owner: string; permitted: boolean }, grants: GrantRow[], actor: string): ParametersParameter {
  const basis = grants.find((g) => g.owner === kind.owner && (g.resource_type === kind.resource_type || g.resource_type === '*')
    && g.permit === kind.permitted);
  return {
    name: 'decision',
    part: [
      { name: 'type', valueCode: kind.resource_type },
      { name: 'owner', valueReference: { reference: `Organization/${kind.owner}` } },
      { name: 'permitted', valueBoolean: kind.permitted },
      ...(basis
        ? [{ name: 'consent', valueReference: { reference: `Consent/${basis.consent_id}` } }, { name: 'provision', valueString: basis.provision }]
        : [{ name: 'basis', valueString: kind.owner === actor ? 'the actor holds this data' : 'no Consent permits it (default deny)' }]),
    ],
  };
}

/**
 * The Consent behind a disclosure already decided, for the audit trail: the deepest permitting
 * provision of an active Consent by the owner that matches who asked, what and why.
 */
export async function disclosureBasis(db: Queryable, viewer: { organizationId?: string; purposeOfUse?: string },
  row: { resourceType: string; owner: string | null; patientId: string | null }): Promise<string | undefined> {
  if (!viewer.organizationId || !row.owner || !row.patientId || row.owner === viewer.organizationId) return undefined;
  const { rows } = await db.query<{ consent_id: string }>(
    `SELECT consent_id FROM consent_grant WHERE patient_id = $1 AND owner = $2 AND permit
       AND grantee IN ($3, '*') AND resource_type IN ($4, '*') AND purpose IN ($5, '*')
       AND (period_start IS NULL OR period_start <= now()) AND (period_end IS NULL OR period_end > now())
     ORDER BY depth DESC LIMIT 1`,
    [row.patientId, row.owner, viewer.organizationId, row.resourceType, viewer.purposeOfUse ?? 'TREAT'],
  );
  return rows[0] ? `Consent/${rows[0].consent_id}` : undefined;
}
