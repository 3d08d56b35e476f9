import { generated } from './generated.js';
import { childPath, error, type ValidationIssue } from './issues.js';

const { elements } = generated.model;

type Json = Record<string, unknown>;

/** The resource an element belongs to, and the resource at the root (the container, for contained ones). */
export interface Owner {
  resource: Json;
  root: Json;
}

/** Called for every complex element: its FHIR type key, the element, its FHIRPath and its owner. */
export type Visitor = (type: string, node: Json, path: string, owner: Owner) => void;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const isComplex = (type: string) => !/^[a-z]/.test(type);

/** The complex children of each type or backbone element: property → its type key. */
const complexChildren = new Map<string, Map<string, string>>();
function complexChildrenOf(type: string): Map<string, string> | undefined {
  let children = complexChildren.get(type);
  if (!children) {
    const table = elements[type];
    if (!table) return undefined;
    children = new Map(Object.entries(table).filter(([, [t]]) => isComplex(t)).map(([key, [t]]) => [key, t]));
    complexChildren.set(type, children);
  }
  return children;
}

/**
 * Walks a structurally valid resource (contained and nested resources included), calling `visit` for each
 * complex element, and reports misuse of null in primitive arrays: FHIR JSON allows null in `given` only
 * where `_given` has that entry, and the other way round.
 */
export function walkResource(resource: Json, visit: Visitor, issues: ValidationIssue[]): void {
  const type = resource.resourceType as string;
  walk(resource, type, type, { resource, root: resource }, visit, issues);
}

function walk(node: Json, type: string, path: string, owner: Owner, visit: Visitor, issues: ValidationIssue[]): void {
  visit(type, node, path, owner);
  const children = complexChildrenOf(type);
  for (const key in node) {
    const value = node[key];
    // The schema refuses null in arrays of complex elements: only primitives' arrays need the check.
    const childType = children?.get(key);
    if (childType === undefined) {
      if (Array.isArray(value)) checkNulls(node, key, value, path, issues);
      continue;
    }
    const at = childPath(path, key);
    const contained = key === 'contained';
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) descend(value[i], childType, `${at}[${i}]`, owner, contained, visit, issues);
    } else {
      descend(value, childType, at, owner, contained, visit, issues);
    }
  }
}

function descend(value: unknown, type: string, path: string, owner: Owner, contained: boolean, visit: Visitor, issues: ValidationIssue[]): void {
  if (!isObject(value)) return;
  if (type !== 'Resource') return walk(value, type, path, owner, visit, issues);
  // A contained resource belongs to its container; a Bundle entry's resource stands on its own.
  const nested = { resource: value, root: contained ? owner.root : value };
  walk(value, value.resourceType as string, path, nested, visit, issues);
}

function checkNulls(node: Json, key: string, values: unknown[], path: string, issues: ValidationIssue[]): void {
  const primitive = key.startsWith('_');
  const name = primitive ? key.slice(1) : key;
  const other = node[primitive ? name : `_${name}`];
  if (primitive && Array.isArray(other) && other.length !== values.length) {
    issues.push(error('structure', `'${name}' and '_${name}' must have the same number of entries / '${name}' と '_${name}' の要素数が一致しません`, childPath(path, name)));
    return;
  }
  for (let i = 0; i < values.length; i++) {
    if (values[i] !== null) continue;
    const partner = Array.isArray(other) ? other[i] : undefined;
    if (partner === undefined || partner === null) {
      issues.push(error('structure', `null in '${key}' needs a value at the same position in '${primitive ? name : `_${name}`}' / 対応する値のない null です`, `${childPath(path, name)}[${i}]`));
    }
  }
}
