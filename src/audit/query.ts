import type { Queryable } from '../store/db.js';
import type { Viewer } from '../store/access.js';
import { SqlParams } from '../store/sql.js';
import { dateSql } from '../store/search/conditions.js';
import { badRequest } from '../fhir/outcome.js';
import { DEFAULT_COUNT, MAX_COUNT, type QueryParams } from '../store/search/request.js';

/**
 * AuditEvents are kept in their own append-only table. An Organization sees the entries about its own
 * data and the entries of its own actions; the administrator sees all.
 */
export function auditVisibility(viewer: Viewer, params: SqlParams): string {
  if (viewer.admin) return 'TRUE';
  if (!viewer.organizationId) return 'FALSE';
  const org = params.add(viewer.organizationId);
  return `(a.owner = ${org} OR a.agent_org = ${org})`;
}

export interface AuditSearch {
  where: string[];
  count: number;
  offset: number;
}

/** Search parameters of AuditEvent served from the table's columns. */
export function parseAuditSearch(query: QueryParams, params: SqlParams): AuditSearch {
  const search: AuditSearch = { where: [], count: DEFAULT_COUNT, offset: 0 };
  for (const [key, value] of query) {
    switch (key) {
      case '_count':
      case '_offset': {
        if (!/^\d{1,9}$/.test(value)) throw badRequest(`${key} must be a non-negative integer`);
        if (key === '_count') search.count = Math.min(Number(value), MAX_COUNT);
        else search.offset = Number(value);
        break;
      }
      case 'date':
        search.where.push(dateSql(value, 'a.recorded', `a.recorded + interval '1 millisecond'`, params));
        break;
      case 'patient':
        search.where.push(`a.patient_id = ${params.add(value.replace(/^Patient\//, ''))}`);
        break;
      case 'entity':
        // Patient/1 also finds the events naming one of its versions (Patient/1/_history/2).
        search.where.push(`EXISTS (SELECT 1 FROM unnest(a.entity) e WHERE e = ${params.add(value)} OR e LIKE ${params.add(`${value.replace(/[\\%_]/g, '\\$&')}/_history/%`)})`);
        break;
      case 'agent':
        search.where.push(`(a.agent_org = ${params.add(value.replace(/^Organization\//, ''))} OR a.agent_client = ${params.add(value)})`);
        break;
      case 'subtype':
        search.where.push(`a.action = ${params.add(value.replace(/^.*\|/, ''))}`);
        break;
      case 'outcome':
        search.where.push(`a.outcome = ${params.add(value)}`);
        break;
      case 'purpose':
        search.where.push(`a.purpose = ${params.add(value.replace(/^.*\|/, ''))}`);
        break;
      case '_total':
      case '_format':
        break;
      default:
        throw badRequest(`AuditEvent search supports date, patient, entity, agent, subtype, outcome and purpose; not ${key}`);
    }
  }
  return search;
}

/** The page and its total in one statement, so both see the same committed AuditEvents. */
export async function searchAuditEvents(db: Queryable, viewer: Viewer, query: QueryParams) {
  const params = new SqlParams();
  const search = parseAuditSearch(query, params);
  const where = [auditVisibility(viewer, params), ...search.where].join(' AND ');
  const { rows } = await db.query<{ total: number; page: { id: string; json: string }[] }>(
    `SELECT (SELECT count(*) FROM audit_event a WHERE ${where}) AS total,
       (SELECT coalesce(json_agg(json_build_object('id', p.id, 'json', p.json) ORDER BY p.seq DESC), '[]')
        FROM (SELECT a.seq, a.id, a.content::text AS json FROM audit_event a WHERE ${where} ORDER BY a.seq DESC
              LIMIT ${params.add(search.count)} OFFSET ${params.add(search.offset)}) p) AS page`,
    params.values,
  );
  return { rows: rows[0].page, total: Number(rows[0].total), count: search.count, offset: search.offset };
}

export async function readAuditEvent(db: Queryable, viewer: Viewer, id: string): Promise<string | undefined> {
  const params = new SqlParams();
  const { rows } = await db.query<{ json: string }>(
    `SELECT content::text AS json FROM audit_event a WHERE a.id = ${params.add(id)} AND ${auditVisibility(viewer, params)}`,
    params.values,
  );
  return rows[0]?.json;
}
