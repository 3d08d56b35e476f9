import { badRequest } from '../../fhir/outcome.js';
import { getParam, type ParamDefinition } from './parameters.js';

export type Prefix = 'eq' | 'ne' | 'gt' | 'lt' | 'ge' | 'le' | 'sa' | 'eb' | 'ap';

/** One search criterion: a parameter (possibly reached through a chain) and its OR-ed values. */
export interface Criterion {
  code: string;
  param: ParamDefinition | SpecialParam;
  modifier?: string;
  values: string[];
  /** `patient.identifier=…`: the reference parameter followed, the target types and the criterion there. */
  chain?: { targetTypes: string[]; criterion: Criterion };
}

export interface SpecialParam {
  code: '_id' | '_lastUpdated';
  type: 'token' | 'date';
}

export interface IncludeSpec {
  sourceType: string;
  param: string;
  targetType?: string;
}

export interface SortKey {
  code: string;
  param: ParamDefinition | SpecialParam;
  descending: boolean;
}

export interface SearchRequest {
  resourceType: string;
  criteria: Criterion[];
  sort: SortKey[];
  count: number;
  offset: number;
  total: 'none' | 'accurate';
  include: IncludeSpec[];
  revinclude: IncludeSpec[];
  summary?: 'true' | 'false' | 'count' | 'data' | 'text';
  elements?: string[];
  /** Parameters left out under `Prefer: handling=lenient`. */
  ignored: string[];
}

export const DEFAULT_COUNT = 20;
export const MAX_COUNT = 1000;

const SPECIAL: Record<string, SpecialParam> = {
  _id: { code: '_id', type: 'token' },
  _lastUpdated: { code: '_lastUpdated', type: 'date' },
};

/** Parameters that shape the result rather than select resources. */
const RESULT_PARAMS = new Set([
  '_count', '_offset', '_sort', '_total', '_include', '_revinclude', '_summary', '_elements', '_format', '_pretty',
]);

const MODIFIERS = new Set([
  'missing', 'exact', 'contains', 'not', 'text', 'below', 'above', 'in', 'not-in', 'of-type', 'identifier', 'iterate',
]);

export type QueryParams = [string, string][];

/** Reads a search's query parameters into a SearchRequest; unknown parameters are 400 unless lenient. */
export function parseSearch(resourceType: string, params: QueryParams, lenient = false): SearchRequest {
  const request: SearchRequest = {
    resourceType, criteria: [], sort: [], count: DEFAULT_COUNT, offset: 0, total: 'accurate',
    include: [], revinclude: [], ignored: [],
  };
  for (const [key, value] of params) {
    if (RESULT_PARAMS.has(key)) applyResultParam(request, key, value);
    else {
      try {
        request.criteria.push(parseCriterion(resourceType, key, value));
      } catch (err) {
        if (!lenient) throw err;
        request.ignored.push(key);
      }
    }
  }
  return request;
}

function applyResultParam(request: SearchRequest, key: string, value: string): void {
  switch (key) {
    case '_count':
      request.count = Math.min(nonNegativeInt(key, value), MAX_COUNT);
      return;
    case '_offset':
      request.offset = nonNegativeInt(key, value);
      return;
    case '_total':
      if (!['none', 'estimate', 'accurate'].includes(value)) throw badRequest(`_total must be none, estimate or accurate`);
      request.total = value === 'none' ? 'none' : 'accurate';
      return;
    case '_sort':
      request.sort = value.split(',').filter(Boolean).map((code) => parseSort(request.resourceType, code));
      return;
    case '_include':
    case '_revinclude':
      request[key === '_include' ? 'include' : 'revinclude'].push(parseInclude(key, value));
      return;
    case '_summary':
      if (!['true', 'false', 'count', 'data', 'text'].includes(value)) throw badRequest(`_summary must be true, false, count, data or text`);
      request.summary = value as SearchRequest['summary'];
      return;
    case '_elements':
      request.elements = value.split(',').map((e) => e.trim()).filter(Boolean);
      return;
  }
}

function nonNegativeInt(key: string, value: string): number {
  if (!/^\d{1,9}$/.test(value)) throw badRequest(`${key} must be a non-negative integer: "${value}"`);
  return Number(value);
}

function parseSort(resourceType: string, raw: string): SortKey {
  const descending = raw.startsWith('-');
  const code = descending ? raw.slice(1) : raw;
  const param = SPECIAL[code] ?? getParam(resourceType, code);
  if (!param) throw badRequest(`Unknown sort parameter "${code}" for ${resourceType} / 並べ替えに使えないパラメータです`);
  return { code, param, descending };
}

function parseInclude(key: string, value: string): IncludeSpec {
  const [sourceType, param, targetType] = value.split(':');
  if (!sourceType || !param) throw badRequest(`${key} must be Type:parameter[:TargetType], got "${value}"`);
  const definition = param === '*' ? undefined : getParam(sourceType, param);
  if (param !== '*' && definition?.type !== 'reference')
    throw badRequest(`${key}: "${sourceType}:${param}" is not a reference search parameter`);
  return { sourceType, param, targetType };
}

export function parseCriterion(resourceType: string, key: string, value: string): Criterion {
  const dot = key.indexOf('.');
  if (dot > 0) return parseChain(resourceType, key.slice(0, dot), key.slice(dot + 1), value);
  const [code, modifier] = splitModifier(key);
  const param = SPECIAL[code] ?? getParam(resourceType, code);
  if (!param) throw badRequest(`Unknown search parameter "${code}" for ${resourceType} / 未対応の検索パラメータです`, [code]);
  const isReference = (param.type as string) === 'reference';
  if (modifier && !MODIFIERS.has(modifier) && !(isReference && /^[A-Z]/.test(modifier)))
    throw badRequest(`Unknown modifier "${modifier}" on ${code}`);
  return { code, param, modifier, values: splitValues(value) };
}

function parseChain(resourceType: string, head: string, rest: string, value: string): Criterion {
  const [code, typeModifier] = splitModifier(head);
  const param = getParam(resourceType, code);
  if (!param || param.type !== 'reference') throw badRequest(`"${code}" is not a reference parameter of ${resourceType}; it cannot be chained`);
  if (rest.includes('.')) throw badRequest('Only one level of chaining is supported / チェーン検索は1段階までです');
  const candidates = typeModifier ? [typeModifier] : param.targets;
  const targetTypes = candidates.filter((t) => getParam(t, splitModifier(rest)[0]) || SPECIAL[splitModifier(rest)[0]]);
  if (!targetTypes.length) throw badRequest(`No target of ${resourceType}.${code} has a search parameter "${rest}"`);
  const criterion = parseCriterion(targetTypes[0], rest, value);
  return { code, param, modifier: typeModifier, values: [], chain: { targetTypes, criterion } };
}

function splitModifier(key: string): [string, string | undefined] {
  const colon = key.indexOf(':');
  return colon < 0 ? [key, undefined] : [key.slice(0, colon), key.slice(colon + 1)];
}

/** Comma-separated alternatives; `\,` is a literal comma. */
function splitValues(value: string): string[] {
  return value.split(/(?<!\\),/).map((v) => v.replace(/\\,/g, ','));
}

export function splitPrefix(value: string): [Prefix, string] {
  const m = /^(eq|ne|gt|lt|ge|le|sa|eb|ap)(?=[\d-])/.exec(value);
  return m ? [m[1] as Prefix, value.slice(2)] : ['eq', value];
}
