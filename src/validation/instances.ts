import { generated } from './generated.js';

type Json = Record<string, unknown>;

const { elements } = generated.model;

/** One occurrence of an element in a resource. */
export interface Instance {
  /** The JSON value; undefined for a primitive given only by its `_name` extensions. */
  value: unknown;
  /** FHIRPath location, e.g. `Patient.name[0].given[1]`. */
  path: string;
  /** FHIR type key from the element model (`HumanName`, `code`, `Patient.contact`), if known. */
  type?: string;
  /** The JSON property it came from (`valueQuantity` for `value[x]`). */
  key: string;
}

export const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
export const capitalize = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

/** JSON properties of `parent` standing for element `name` (`value[x]` → `valueQuantity`, …). */
function keysFor(parent: Json, name: string): string[] {
  if (!name.endsWith('[x]')) return [name];
  const base = name.slice(0, -3);
  const keys = new Set<string>();
  for (const key of Object.keys(parent)) {
    const bare = key.startsWith('_') ? key.slice(1) : key;
    if (bare.length > base.length && bare.startsWith(base) && /[A-Z]/.test(bare.charAt(base.length))) keys.add(bare);
  }
  return [...keys];
}

/** The occurrences of child element `name` in `parent`, primitives with extension-only values included. */
export function childInstances(parent: Instance, name: string): Instance[] {
  const out: Instance[] = [];
  if (!isObject(parent.value)) return out;
  const object = parent.value;
  const table = parent.type ? elements[parent.type] : undefined;
  for (const key of keysFor(object, name)) {
    const value = object[key];
    const extensions = object[`_${key}`];
    const type = table?.[key]?.[0];
    const at = `${parent.path}.${key}`;
    if (Array.isArray(value) || Array.isArray(extensions)) {
      const length = Math.max(Array.isArray(value) ? value.length : 0, Array.isArray(extensions) ? extensions.length : 0);
      for (let i = 0; i < length; i++) {
        const item = Array.isArray(value) ? (value[i] ?? undefined) : undefined;
        out.push({ value: item, path: `${at}[${i}]`, type: resolveType(type, item), key });
      }
    } else if (value !== undefined || extensions !== undefined) {
      out.push({ value, path: at, type: resolveType(type, value), key });
    }
  }
  return out;
}

function resolveType(type: string | undefined, value: unknown): string | undefined {
  if (type === 'Resource' && isObject(value) && typeof value.resourceType === 'string') return value.resourceType;
  return type;
}

/** Values at a dotted path below a value (arrays expanded), for slice discriminators. */
export function valuesAt(value: unknown, dotted: string): unknown[] {
  let current: unknown[] = [value];
  if (dotted === '$this') return current;
  for (const step of dotted.split('.')) {
    const next: unknown[] = [];
    for (const v of current) {
      const child = isObject(v) ? v[step] : undefined;
      if (Array.isArray(child)) next.push(...child);
      else if (child !== undefined) next.push(child);
    }
    current = next;
  }
  return current;
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => deepEqual(v, b[i]));
  if (isObject(a) && isObject(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((k) => deepEqual(a[k], b[k]));
  }
  return false;
}

/** FHIR pattern[x] semantics: every property of the pattern is present with the same value; arrays by containment. */
export function matchesPattern(value: unknown, pattern: unknown): boolean {
  if (Array.isArray(pattern)) {
    return Array.isArray(value) && pattern.every((p) => value.some((v) => matchesPattern(v, p)));
  }
  if (isObject(pattern)) {
    return isObject(value) && Object.entries(pattern).every(([k, p]) => matchesPattern(value[k], p));
  }
  return value === pattern;
}

/** The resource type a Reference points to, when it can be told from the reference itself. */
export function referencedTypes(ref: Json, resource: Json): string[] {
  const types: string[] = [];
  if (typeof ref.type === 'string') types.push(ref.type);
  const reference = ref.reference;
  if (typeof reference !== 'string') return types;
  if (reference.startsWith('#')) {
    const contained = Array.isArray(resource.contained) ? (resource.contained as Json[]) : [];
    const target = contained.find((r) => r.id === reference.slice(1));
    if (typeof target?.resourceType === 'string') types.push(target.resourceType);
    return types;
  }
  const match = /(?:^|\/)([A-Z][A-Za-z]+)\/[A-Za-z0-9\-.]{1,64}(?:\/_history\/[A-Za-z0-9\-.]{1,64})?$/.exec(reference);
  if (match) types.push(match[1]);
  return types;
}
