import { parseDateRange, periodRange, type DateRange } from './dates.js';
import { normalizeString } from './normalize.js';
import { paramsFor, type ExtractedValue, type ParamDefinition } from './parameters.js';

/** The search index rows of one resource, column-major so they insert with one `unnest` per table. */
export interface IndexRows {
  token: { param: string; system: string | null; value: string | null; text: string | null }[];
  string: { param: string; norm: string; exact: string }[];
  date: { param: string; lo: Date; hi: Date }[];
  number: { param: string; value: number; system: string | null; code: string | null }[];
  reference: { param: string; targetType: string | null; targetId: string | null; target: string }[];
  uri: { param: string; value: string }[];
}

export function emptyIndexRows(): IndexRows {
  return { token: [], string: [], date: [], number: [], reference: [], uri: [] };
}

type Json = Record<string, unknown>;

export function extractIndexRows(resource: Json & { resourceType: string }): IndexRows {
  const rows = emptyIndexRows();
  for (const param of paramsFor(resource.resourceType).values()) {
    let values: ExtractedValue[];
    try {
      values = param.extract(resource);
    } catch {
      continue; // an expression that cannot evaluate on this resource indexes nothing
    }
    for (const v of values) addValue(rows, param, v);
  }
  return dedupe(rows);
}

function addValue(rows: IndexRows, param: ParamDefinition, { value, targetType }: ExtractedValue): void {
  if (value === undefined || value === null) return;
  switch (param.type) {
    case 'token':
      return addToken(rows, param.code, value);
    case 'string':
      return addStrings(rows, param.code, value);
    case 'date':
      return addDate(rows, param.code, value);
    case 'number':
      if (typeof value === 'number') rows.number.push({ param: param.code, value, system: null, code: null });
      return;
    case 'quantity':
      return addQuantity(rows, param.code, value);
    case 'reference':
      return addReference(rows, param.code, value, targetType);
    case 'uri':
      if (typeof value === 'string') rows.uri.push({ param: param.code, value });
      return;
  }
}

function addToken(rows: IndexRows, param: string, value: unknown): void {
  if (typeof value === 'string' || typeof value === 'boolean' || typeof value === 'number') {
    rows.token.push({ param, system: null, value: String(value), text: null });
    return;
  }
  if (typeof value !== 'object') return;
  const v = value as Json;
  if (Array.isArray(v.coding) || (typeof v.text === 'string' && v.value === undefined && v.code === undefined)) {
    const text = typeof v.text === 'string' ? normalizeString(v.text) : null;
    for (const coding of (v.coding as Json[] | undefined) ?? []) pushCoding(rows, param, coding, text);
    if (text) rows.token.push({ param, system: null, value: null, text });
    return;
  }
  if ('code' in v) return pushCoding(rows, param, v, null);
  if (typeof v.value === 'string') {
    // Identifier or ContactPoint. An Identifier's type text is searchable with :text.
    const typeText = (v.type as Json | undefined)?.text;
    const system = typeof v.system === 'string' && v.system.includes(':') ? v.system : null;
    rows.token.push({ param, system, value: v.value, text: typeof typeText === 'string' ? normalizeString(typeText) : null });
  }
}

function pushCoding(rows: IndexRows, param: string, coding: Json, text: string | null): void {
  const code = typeof coding.code === 'string' ? coding.code : null;
  const system = typeof coding.system === 'string' ? coding.system : null;
  const display = typeof coding.display === 'string' ? normalizeString(coding.display) : null;
  if (code || system) rows.token.push({ param, system, value: code, text: display ?? text });
}

function addStrings(rows: IndexRows, param: string, value: unknown): void {
  for (const s of stringsOf(value)) {
    const norm = normalizeString(s);
    if (norm) rows.string.push({ param, norm: norm.slice(0, 1000), exact: s.slice(0, 1000) });
  }
}

/** The searchable texts of a string-typed element: HumanName and Address search every part and the whole. */
function stringsOf(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (typeof value !== 'object' || value === null) return [];
  const v = value as Json;
  const parts: string[] = [];
  for (const key of ['family', 'text', 'city', 'district', 'state', 'postalCode', 'country']) {
    if (typeof v[key] === 'string') parts.push(v[key] as string);
  }
  for (const key of ['given', 'prefix', 'suffix', 'line']) {
    if (Array.isArray(v[key])) parts.push(...(v[key] as unknown[]).filter((x): x is string => typeof x === 'string'));
  }
  if (typeof v.family === 'string' && Array.isArray(v.given)) parts.push(`${v.family}${(v.given as string[]).join('')}`);
  return parts;
}

function addDate(rows: IndexRows, param: string, value: unknown): void {
  const range = dateRangeOf(value);
  if (range) rows.date.push({ param, lo: range.lo, hi: range.hi });
}

function dateRangeOf(value: unknown): DateRange | undefined {
  if (typeof value === 'string') return parseDateRange(value);
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Json;
  if ('start' in v || 'end' in v) return periodRange(v.start as string | undefined, v.end as string | undefined);
  const bounds = (v.repeat as Json | undefined)?.boundsPeriod as Json | undefined;
  if (bounds) return periodRange(bounds.start as string | undefined, bounds.end as string | undefined);
  if (Array.isArray(v.event) && typeof v.event[0] === 'string') return parseDateRange(v.event[0]);
  return undefined;
}

function addQuantity(rows: IndexRows, param: string, value: unknown): void {
  if (typeof value !== 'object' || value === null) return;
  const v = value as Json;
  if (typeof v.value !== 'number') return;
  const system = typeof v.system === 'string' ? v.system : null;
  const code = typeof v.code === 'string' ? v.code : typeof v.unit === 'string' ? v.unit : null;
  rows.number.push({ param, value: v.value, system, code });
  if (typeof v.unit === 'string' && v.unit !== code) rows.number.push({ param, value: v.value, system: null, code: v.unit });
}

const LOCAL_REFERENCE = /^(?:.*\/)?([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/;

function addReference(rows: IndexRows, param: string, value: unknown, restrictTo?: string): void {
  const reference = typeof value === 'string' ? value : (value as Json | undefined)?.reference;
  if (typeof reference !== 'string' || reference.startsWith('#')) return;
  const match = LOCAL_REFERENCE.exec(reference);
  const targetType = match?.[1] ?? null;
  if (restrictTo && targetType !== restrictTo) return;
  rows.reference.push({ param, targetType, targetId: match?.[2] ?? null, target: reference });
}

function dedupe(rows: IndexRows): IndexRows {
  const unique = <T>(list: T[], key: (row: T) => string) => {
    if (list.length < 2) return list;
    const seen = new Set<string>();
    return list.filter((row) => {
      const k = key(row);
      return seen.has(k) ? false : (seen.add(k), true);
    });
  };
  const SEP = '\u0000';
  return {
    token: unique(rows.token, (r) => r.param + SEP + r.system + SEP + r.value + SEP + r.text),
    string: unique(rows.string, (r) => r.param + SEP + r.norm + SEP + r.exact),
    date: unique(rows.date, (r) => r.param + SEP + r.lo.getTime() + SEP + r.hi.getTime()),
    number: unique(rows.number, (r) => r.param + SEP + r.value + SEP + r.system + SEP + r.code),
    reference: unique(rows.reference, (r) => r.param + SEP + r.target + SEP + r.targetType),
    uri: unique(rows.uri, (r) => r.param + SEP + r.value),
  };
}
