import { badRequest } from '../../fhir/outcome.js';
import { linkedPatientsSql } from '../../consent/patient-links.js';
import { visibilitySql, type Viewer } from '../access.js';
import type { SqlParams } from '../sql.js';
import { parseDateRange } from './dates.js';
import { normalizeString } from './normalize.js';
import type { ParamType } from './parameters.js';
import { splitPrefix, type Criterion, type Prefix } from './request.js';

const TABLE: Record<ParamType, string> = {
  token: 'sp_token', string: 'sp_string', date: 'sp_date', number: 'sp_number', quantity: 'sp_number',
  reference: 'sp_reference', uri: 'sp_uri',
};

/** The SQL condition, on the resource row under `alias`, that one criterion stands for. */
export function criterionSql(c: Criterion, alias: string, params: SqlParams, viewer: Viewer): string {
  if (c.chain) return chainSql(c, alias, params, viewer);
  if (c.param.code === '_id') return idSql(c, alias, params);
  if (c.param.code === '_lastUpdated') return or(c.values.map((v) => dateSql(v, `${alias}.last_updated`, `${alias}.last_updated + interval '1 millisecond'`, params)));
  const type = c.param.type as ParamType;
  const rows = (condition: string) =>
    `EXISTS (SELECT 1 FROM ${TABLE[type]} i WHERE i.resource_type = ${alias}.resource_type AND i.id = ${alias}.id` +
    ` AND i.param = ${params.add(c.param.code)}${condition ? ` AND ${condition}` : ''})`;
  if (c.modifier === 'missing') {
    const missing = c.values[0] === 'true';
    if (!missing && c.values[0] !== 'false') throw badRequest(`:missing takes true or false`);
    return missing ? `NOT ${rows('')}` : rows('');
  }
  if (c.modifier === 'not' && type === 'token') return `NOT ${rows(or(c.values.map((v) => tokenSql(v, undefined, params))))}`;
  return rows(or(c.values.map((v) => valueSql(type, c.modifier, v, params, c.param))));
}

function valueSql(type: ParamType, modifier: string | undefined, value: string, params: SqlParams, param: Criterion['param']): string {
  switch (type) {
    case 'token':
      return tokenSql(value, modifier, params);
    case 'string':
      return stringSql(value, modifier, params);
    case 'date':
      return dateSql(value, 'i.lo', 'i.hi', params);
    case 'number':
      return numberSql(value, params);
    case 'quantity':
      return quantitySql(value, params);
    case 'reference':
      return referenceSql(value, modifier, params, 'targets' in param ? param.targets : []);
    case 'uri':
      return uriSql(value, modifier, params);
  }
}

function or(parts: string[]): string {
  return parts.length === 1 ? parts[0] : `(${parts.join(' OR ')})`;
}

function idSql(c: Criterion, alias: string, params: SqlParams): string {
  const sql = `${alias}.id = ANY(${params.add(c.values)}::text[])`;
  return c.modifier === 'not' ? `NOT ${sql}` : sql;
}

function tokenSql(value: string, modifier: string | undefined, params: SqlParams): string {
  if (modifier === 'text') return `i.text_norm LIKE ${params.add(likePrefix(normalizeString(value)))}`;
  if (modifier && modifier !== 'not') throw badRequest(`Modifier :${modifier} is not supported on token parameters`);
  const bar = value.indexOf('|');
  if (bar < 0) return `i.value = ${params.add(value)}`;
  const system = value.slice(0, bar);
  const code = value.slice(bar + 1);
  if (!system) return `(i.value = ${params.add(code)} AND i.system IS NULL)`;
  if (!code) return `i.system = ${params.add(system)}`;
  return `(i.value = ${params.add(code)} AND i.system = ${params.add(system)})`;
}

function stringSql(value: string, modifier: string | undefined, params: SqlParams): string {
  if (modifier === 'exact') return `i.exact = ${params.add(value)}`;
  const norm = escapeLike(normalizeString(value));
  if (modifier === 'contains') return `i.norm LIKE ${params.add(`%${norm}%`)}`;
  if (modifier) throw badRequest(`Modifier :${modifier} is not supported on string parameters`);
  return `i.norm LIKE ${params.add(`${norm}%`)}`;
}

function likePrefix(norm: string): string {
  return `${escapeLike(norm)}%`;
}

function escapeLike(value: string): string {
  return value.replace(/[\\%_]/g, (ch) => `\\${ch}`);
}

/** Date comparison of an indexed range [lo, hi) against the range the search value denotes. */
export function dateSql(value: string, lo: string, hi: string, params: SqlParams): string {
  const [prefix, raw] = splitPrefix(value);
  const range = parseDateRange(raw);
  if (!range) throw badRequest(`"${value}" is not a valid date search value / 日付の形式が正しくありません`);
  const qlo = () => `${params.add(range.lo.toISOString())}::timestamptz`;
  const qhi = () => `${params.add(range.hi.toISOString())}::timestamptz`;
  const widen = () => `${params.add(`${approxSeconds(range.lo)} seconds`)}::interval`;
  const conditions: Record<Prefix, () => string> = {
    eq: () => `(${lo} >= ${qlo()} AND ${hi} <= ${qhi()})`,
    ne: () => `NOT (${lo} >= ${qlo()} AND ${hi} <= ${qhi()})`,
    gt: () => `${hi} > ${qhi()}`,
    lt: () => `${lo} < ${qlo()}`,
    ge: () => `${hi} > ${qlo()}`,
    le: () => `${lo} < ${qhi()}`,
    sa: () => `${lo} >= ${qhi()}`,
    eb: () => `${hi} <= ${qlo()}`,
    ap: () => `(${lo} < ${qhi()} + ${widen()} AND ${hi} > ${qlo()} - ${widen()})`,
  };
  return conditions[prefix]();
}

/** `ap` widens by 10 % of the distance from now, at least a day. */
function approxSeconds(at: Date): number {
  return Math.max(86_400, Math.round(Math.abs(Date.now() - at.getTime()) / 10_000));
}

function numberSql(value: string, params: SqlParams): string {
  const [prefix, raw] = splitPrefix(value);
  return numericSql(prefix, raw, params);
}

function numericSql(prefix: Prefix, raw: string, params: SqlParams): string {
  if (!/^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(raw)) throw badRequest(`"${raw}" is not a number`);
  const decimals = raw.includes('.') ? raw.split('.')[1].replace(/[eE].*/, '').length : 0;
  const half = 0.5 * 10 ** -decimals;
  const n = Number(raw);
  const num = (x: string) => `${params.add(x)}::numeric`;
  const inRange = () => `(i.value >= ${num(String(n - half))} AND i.value < ${num(String(n + half))})`;
  // Only the placeholders a prefix uses are added: an unused one has no type PostgreSQL can infer.
  const conditions: Record<Prefix, () => string> = {
    eq: inRange,
    ne: () => `NOT ${inRange()}`,
    gt: () => `i.value > ${num(raw)}`, lt: () => `i.value < ${num(raw)}`,
    ge: () => `i.value >= ${num(raw)}`, le: () => `i.value <= ${num(raw)}`,
    sa: () => `i.value > ${num(raw)}`, eb: () => `i.value < ${num(raw)}`,
    ap: () => `(i.value >= ${num(raw)} * 0.9 AND i.value <= ${num(raw)} * 1.1)`,
  };
  return conditions[prefix]();
}

function quantitySql(value: string, params: SqlParams): string {
  const [prefix, rest] = splitPrefix(value);
  const [number, system, code] = rest.split('|');
  const parts = [numericSql(prefix, number, params)];
  if (system) parts.push(`i.system = ${params.add(system)}`);
  if (code) parts.push(`i.code = ${params.add(code)}`);
  return `(${parts.join(' AND ')})`;
}

function referenceSql(value: string, modifier: string | undefined, params: SqlParams, targets: string[]): string {
  if (modifier === 'identifier' || modifier === 'missing') throw badRequest(`Modifier :${modifier} is not supported here`);
  const local = /^(?:.*\/)?([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})$/.exec(value);
  if (/^https?:|^urn:/.test(value) && !local) return `i.target = ${params.add(value)}`;
  if (local) {
    if (local[1] === 'Patient') return `(i.target_type = 'Patient' AND i.target_id IN (${linkedPatientsSql(params.add(local[2]))}))`;
    return `(i.target_type = ${params.add(local[1])} AND i.target_id = ${params.add(local[2])})`;
  }
  const types = modifier ? [modifier] : targets;
  if (types.length === 1 && types[0] === 'Patient') {
    return `(i.target_type = 'Patient' AND i.target_id IN (${linkedPatientsSql(params.add(value))}))`;
  }
  const typeCondition = types.length ? ` AND i.target_type = ANY(${params.add(types)}::text[])` : '';
  return `(i.target_id = ${params.add(value)}${typeCondition})`;
}

function uriSql(value: string, modifier: string | undefined, params: SqlParams): string {
  if (modifier === 'below') return `i.value LIKE ${params.add(`${escapeLike(value)}%`)}`;
  if (modifier === 'above') return `${params.add(value)} LIKE i.value || '%'`;
  if (modifier) throw badRequest(`Modifier :${modifier} is not supported on uri parameters`);
  return `i.value = ${params.add(value)}`;
}

/** `patient.identifier=…`: some referenced resource the viewer may see matches the chained criterion. */
function chainSql(c: Criterion, alias: string, params: SqlParams, viewer: Viewer): string {
  const { targetTypes, criterion } = c.chain!;
  return `EXISTS (SELECT 1 FROM sp_reference ref JOIN resource tr
      ON tr.resource_type = ref.target_type AND tr.id = ref.target_id AND NOT tr.deleted
    WHERE ref.resource_type = ${alias}.resource_type AND ref.id = ${alias}.id AND ref.param = ${params.add(c.param.code)}
      AND ref.target_type = ANY(${params.add(targetTypes)}::text[])
      AND ${visibilitySql(viewer, 'tr', params)}
      AND ${criterionSql(criterion, 'tr', params, viewer)})`;
}
