import type { Queryable } from '../db.js';
import { disclosureBasisSql, visibilitySql, type Viewer } from '../access.js';
import { SqlParams } from '../sql.js';
import { STORED_COLUMNS, toStored, type StoredResource, type StoredRow } from '../stored.js';
import { criterionSql } from './conditions.js';
import { paramsFor } from './parameters.js';
import type { IncludeSpec, SearchRequest, SortKey } from './request.js';

export interface SearchResult {
  matches: StoredResource[];
  included: StoredResource[];
  total?: number;
}

const SORT_TABLE: Record<string, [string, string, string]> = {
  date: ['sp_date', 'min(lo)', 'max(hi)'],
  string: ['sp_string', 'min(norm)', 'max(norm)'],
  token: ['sp_token', 'min(value)', 'max(value)'],
  number: ['sp_number', 'min(value)', 'max(value)'],
  quantity: ['sp_number', 'min(value)', 'max(value)'],
  reference: ['sp_reference', 'min(target)', 'max(target)'],
  uri: ['sp_uri', 'min(value)', 'max(value)'],
};

/** WHERE clause selecting the visible, current resources a search matches (filtering happens before paging). */
export function matchCondition(request: SearchRequest, viewer: Viewer, params: SqlParams, alias = 'r'): string {
  const where = [
    `${alias}.resource_type = ${params.add(request.resourceType)}`,
    `NOT ${alias}.deleted`,
    visibilitySql(viewer, alias, params),
    ...request.criteria.map((c) => criterionSql(c, alias, params, viewer)),
  ];
  return where.join('\n  AND ');
}

export async function executeSearch(db: Queryable, request: SearchRequest, viewer: Viewer): Promise<SearchResult> {
  const countOnly = request.summary === 'count';
  const counted = request.total === 'accurate' || countOnly;
  // Every statement is compiled before any runs, so a bad search value fails the request cleanly.
  const count = counted ? countStatement(request, viewer) : undefined;
  const page = countOnly || request.count === 0 ? undefined : pageStatement(request, viewer, counted);
  const pageRows = page ? (await db.query<PageRow>(page.sql, page.values)).rows : [];
  const matches = pageRows.map(toStored);
  const total = count && (totalFromPage(request, pageRows, Boolean(page)) ??
    Number((await db.query<{ total: string }>(count.sql, count.values)).rows[0].total));
  const included = matches.length ? await includes(db, request, matches, viewer) : [];
  return { matches, included, total };
}

type PageRow = StoredRow & { total?: string };

/** The total rides on a non-empty counted page; an empty first page tells it too (nothing matched). */
function totalFromPage(request: SearchRequest, rows: PageRow[], paged: boolean): number | undefined {
  if (rows.length) return Number(rows[0].total);
  return paged && request.offset === 0 ? 0 : undefined;
}

interface Statement {
  sql: string;
  values: unknown[];
}

/**
 * The page, and with `counted` the total beside each row: the match condition (with its Consent joins)
 * runs once, and the page and its total see the same snapshot. The total is counted over the narrow
 * matching keys; the stored rows, and what let the viewer see each other owner's row, are read for the
 * page only.
 */
function pageStatement(request: SearchRequest, viewer: Viewer, counted: boolean): Statement {
  const params = new SqlParams();
  const where = matchCondition(request, viewer, params);
  const window = `LIMIT ${params.add(request.count)} OFFSET ${params.add(request.offset)}`;
  if (!counted) {
    const sql = `SELECT ${STORED_COLUMNS}, ${disclosureBasisSql(viewer, 'r', params)} AS basis FROM resource r WHERE ${where}
      ORDER BY ${orderBy(request.sort, params)} ${window}`;
    return { sql, values: params.values };
  }
  const sql = `SELECT ${prefixed('r')}, m.total, ${disclosureBasisSql(viewer, 'r', params)} AS basis FROM (
      SELECT r.resource_type, r.id, count(*) OVER () AS total FROM resource r WHERE ${where}
      ORDER BY ${orderBy(request.sort, params)} ${window}) m
    JOIN resource r ON r.resource_type = m.resource_type AND r.id = m.id
    ORDER BY ${orderBy(request.sort, params)}`;
  return { sql, values: params.values };
}

function countStatement(request: SearchRequest, viewer: Viewer): Statement {
  const params = new SqlParams();
  return { sql: `SELECT count(*) AS total FROM resource r WHERE ${matchCondition(request, viewer, params)}`, values: params.values };
}

function orderBy(sort: SortKey[], params: SqlParams): string {
  if (!sort.length) return 'r.last_updated DESC, r.id DESC';
  const keys = sort.map(({ param, descending }) => {
    const dir = descending ? 'DESC' : 'ASC';
    if (param.code === '_lastUpdated') return `r.last_updated ${dir}`;
    if (param.code === '_id') return `r.id ${dir}`;
    const [table, asc, desc] = SORT_TABLE[param.type];
    return `(SELECT ${descending ? desc : asc} FROM ${table} s WHERE s.resource_type = r.resource_type AND s.id = r.id
      AND s.param = ${params.add(param.code)}) ${dir} NULLS LAST`;
  });
  return [...keys, 'r.id'].join(', ');
}

async function includes(db: Queryable, request: SearchRequest, matches: StoredResource[], viewer: Viewer): Promise<StoredResource[]> {
  const found = new Map<string, StoredResource>();
  const seen = new Set(matches.map((m) => `${m.resourceType}/${m.id}`));
  const ids = matches.map((m) => m.id);
  const batches = [
    ...request.include.filter((s) => s.sourceType === request.resourceType).map((s) => forwardInclude(db, s, request.resourceType, ids, viewer)),
    ...request.revinclude.map((s) => reverseInclude(db, s, request.resourceType, ids, viewer)),
  ];
  for (const rows of await Promise.all(batches)) {
    for (const row of rows) {
      const key = `${row.resourceType}/${row.id}`;
      if (!seen.has(key)) found.set(key, row);
    }
  }
  return [...found.values()];
}

function includeParams(spec: IncludeSpec): string[] {
  return spec.param === '*'
    ? [...paramsFor(spec.sourceType).values()].filter((p) => p.type === 'reference').map((p) => p.code)
    : [spec.param];
}

async function forwardInclude(db: Queryable, spec: IncludeSpec, type: string, ids: string[], viewer: Viewer): Promise<StoredResource[]> {
  const params = new SqlParams();
  const sql = `SELECT DISTINCT ON (tr.resource_type, tr.id) ${prefixed('tr')} FROM sp_reference ref
    JOIN resource tr ON tr.resource_type = ref.target_type AND tr.id = ref.target_id
    WHERE ref.resource_type = ${params.add(type)} AND ref.id = ANY(${params.add(ids)}::text[])
      AND ref.param = ANY(${params.add(includeParams(spec))}::text[])
      ${spec.targetType ? `AND ref.target_type = ${params.add(spec.targetType)}` : ''}
      AND NOT tr.deleted AND ${visibilitySql(viewer, 'tr', params)}`;
  const { rows } = await db.query<StoredRow>(sql, params.values);
  return rows.map(toStored);
}

async function reverseInclude(db: Queryable, spec: IncludeSpec, type: string, ids: string[], viewer: Viewer): Promise<StoredResource[]> {
  const params = new SqlParams();
  const sql = `SELECT DISTINCT ON (src.resource_type, src.id) ${prefixed('src')} FROM sp_reference ref
    JOIN resource src ON src.resource_type = ref.resource_type AND src.id = ref.id
    WHERE ref.target_type = ${params.add(type)} AND ref.target_id = ANY(${params.add(ids)}::text[])
      AND ref.resource_type = ${params.add(spec.sourceType)}
      AND ref.param = ANY(${params.add(includeParams(spec))}::text[])
      AND NOT src.deleted AND ${visibilitySql(viewer, 'src', params)}
    LIMIT 1000`;
  const { rows } = await db.query<StoredRow>(sql, params.values);
  return rows.map(toStored);
}

function prefixed(alias: string): string {
  return STORED_COLUMNS.split(', ').map((c) => `${alias}.${c}`).join(', ');
}
