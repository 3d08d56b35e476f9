/**
 * The R4 data types' invariants written in JavaScript: they apply to every element of their type, so they
 * run very often and fhirpath.js would dominate validation time. Each entry either decides the invariant
 * (`check`) or says when FHIRPath evaluation is needed at all (`needsFhirPath`, for comparisons of dates
 * and quantities whose semantics fhirpath.js implements).
 */
type Json = Record<string, unknown>;

export interface NativeInvariant {
  /** true when the element satisfies the invariant. */
  check?: (node: Json, root: Json) => boolean;
  /** true when the FHIRPath expression has to be evaluated; otherwise the invariant holds. */
  needsFhirPath?: (node: Json) => boolean;
}

const UCUM = 'http://unitsofmeasure.org';
const has = (node: Json, key: string) => node[key] !== undefined || node[`_${key}`] !== undefined;
const num = (node: Json, key: string) => (typeof node[key] === 'number' ? (node[key] as number) : undefined);
const ucumOrAbsent = (node: Json) => node.system === undefined || node.system === UCUM;
const codedIfValued = (node: Json) => has(node, 'code') || !has(node, 'value');

export const NATIVE_INVARIANTS: Record<string, NativeInvariant> = {
  'per-1': { needsFhirPath: (n) => n.start !== undefined && n.end !== undefined },
  'rng-2': { needsFhirPath: (n) => n.low !== undefined && n.high !== undefined },
  'rat-1': { check: (n) => has(n, 'numerator') === has(n, 'denominator') && (has(n, 'numerator') || has(n, 'extension')) },
  'qty-3': { check: (n) => !has(n, 'code') || has(n, 'system') },
  'sqty-1': { check: (n) => !has(n, 'comparator') },
  'mqty-1': { check: (n) => codedIfValued(n) && (n.system === undefined || n.system === 'urn:iso:std:iso:4217') },
  'age-1': { check: (n) => codedIfValued(n) && ucumOrAbsent(n) && (num(n, 'value') === undefined || num(n, 'value')! > 0) },
  'cnt-3': {
    check: (n) =>
      codedIfValued(n) && ucumOrAbsent(n) && (n.code === undefined || n.code === '1') &&
      (num(n, 'value') === undefined || Number.isInteger(num(n, 'value'))),
  },
  'dis-1': { check: (n) => codedIfValued(n) && ucumOrAbsent(n) },
  'drt-1': { check: (n) => !has(n, 'code') || (n.system === UCUM && has(n, 'value')) },
  'cpt-2': { check: (n) => !has(n, 'value') || has(n, 'system') },
  'att-1': { check: (n) => !has(n, 'data') || has(n, 'contentType') },
  'ref-1': {
    // "#" alone points at the container and is always legal.
    check: (n, root) => {
      const ref = n.reference;
      if (typeof ref !== 'string' || !ref.startsWith('#') || ref.length === 1) return true;
      const contained = Array.isArray(root.contained) ? (root.contained as Json[]) : [];
      return contained.some((r) => r.id === ref.slice(1));
    },
  },
  'tim-1': { check: (n) => !has(n, 'duration') || has(n, 'durationUnit') },
  'tim-2': { check: (n) => !has(n, 'period') || has(n, 'periodUnit') },
  'tim-4': { check: (n) => num(n, 'duration') === undefined || num(n, 'duration')! >= 0 },
  'tim-5': { check: (n) => num(n, 'period') === undefined || num(n, 'period')! >= 0 },
  'tim-6': { check: (n) => !has(n, 'periodMax') || has(n, 'period') },
  'tim-7': { check: (n) => !has(n, 'durationMax') || has(n, 'duration') },
  'tim-8': { check: (n) => !has(n, 'countMax') || has(n, 'count') },
  'tim-9': {
    check: (n) =>
      !has(n, 'offset') ||
      (Array.isArray(n.when) && (n.when as unknown[]).every((w) => !['C', 'CM', 'CD', 'CV'].includes(w as string))),
  },
  'tim-10': { check: (n) => !has(n, 'timeOfDay') || !has(n, 'when') },
};

/** Quantity profiles carry Quantity's own invariants as well as theirs. */
export const QUANTITY_PROFILES = new Set(['SimpleQuantity', 'MoneyQuantity', 'Age', 'Count', 'Distance', 'Duration']);
