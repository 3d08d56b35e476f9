import type { Parameters, ParametersParameter } from '@medplum/fhirtypes';
import { consentDenySql, consentPermitSql } from './sql.js';
import { visibilitySql } from '../store/access.js';
import type { Queryable } from '../store/db.js';
import { SqlParams } from '../store/sql.js';

export interface AccessQuestion {
  /** The data owner asking (or undefined for the administrator: every owner). */
  owner?: string;
  patientId: string;
  actor: string;
  purpose: string;
  /** One resource (`Type/id`) instead of all the patient's data. */
  resource?: { type: string; id: string };
}

interface DecisionRow {
  resource_type: string;
  owner: string;
  permitted: boolean;
  permit_by: string | null;
  deny_by: string | null;
  resources: number;
}

/**
 * Patient/{id}/$access: for the data an owner holds about the patient, grouped by type and outcome,
 * whether `actor` may see it for `purpose` now and which Consent provision decided. "Permitted" is the
 * very condition every read and search applies; the provision is the deepest permitting one, or for a
 * refusal the deepest matching deny, or none (default deny). Break-glass is not considered.
 */
export async function explainAccess(db: Queryable, q: AccessQuestion): Promise<Parameters> {
  const params = new SqlParams();
  const viewer = { admin: false, organizationId: q.actor, purposeOfUse: q.purpose };
  const visible = visibilitySql(viewer, 'r', params);
  const org = params.add(q.actor);
  const purpose = params.add(q.purpose);
  const where = [`r.patient_id = ${params.add(q.patientId)}`, 'NOT r.deleted'];
  if (q.owner) where.push(`r.owner = ${params.add(q.owner)}`);
  if (q.resource) where.push(`r.resource_type = ${params.add(q.resource.type)} AND r.id = ${params.add(q.resource.id)}`);
  const { rows } = await db.query<DecisionRow>(
    `SELECT resource_type, owner, permitted, permit_by, deny_by, count(*)::int AS resources FROM (
       SELECT r.resource_type, r.owner, ${visible} AS permitted,
         ${consentPermitSql('r', org, purpose)} AS permit_by, ${consentDenySql('r', org, purpose)} AS deny_by
       FROM resource r WHERE ${where.join(' AND ')} AND r.owner IS NOT NULL) x
     GROUP BY resource_type, owner, permitted, permit_by, deny_by
     ORDER BY owner, resource_type, permitted DESC`,
    params.values,
  );
  return {
    resourceType: 'Parameters',
    parameter: [
      { name: 'actor', valueReference: { reference: `Organization/${q.actor}` } },
      { name: 'purpose', valueCode: q.purpose },
      ...(q.resource ? [{ name: 'resource', valueReference: { reference: `${q.resource.type}/${q.resource.id}` } }] : []),
      ...rows.map((row) => decision(row, q.actor)),
    ],
  };
}

function decision(row: DecisionRow, actor: string): ParametersParameter {
  const by = row.permitted ? row.permit_by : row.deny_by;
  const [consentId, provision] = by ? [by.slice(0, by.indexOf(' ')), by.slice(by.indexOf(' ') + 1)] : [];
  const reason = row.owner === actor ? 'the actor holds this data / 自機関のデータ'
    : row.permitted ? 'shared directory data' : 'no Consent permits it (default deny) / 同意がないため非開示';
  return {
    name: 'decision',
    part: [
      { name: 'type', valueCode: row.resource_type },
      { name: 'owner', valueReference: { reference: `Organization/${row.owner}` } },
      { name: 'permitted', valueBoolean: row.permitted },
      { name: 'count', valueInteger: row.resources },
      ...(consentId && row.owner !== actor
        ? [{ name: 'consent', valueReference: { reference: `Consent/${consentId}` } }, { name: 'provision', valueString: provision }]
        : [{ name: 'basis', valueString: reason }]),
    ],
  };
}
