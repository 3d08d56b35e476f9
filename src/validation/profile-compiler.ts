import { FhirPathInvariant } from './fhirpath-invariant.js';
import { generated } from './generated.js';
import {
  capitalize, childInstances, deepEqual, isObject, matchesPattern, referencedTypes, valuesAt, type Instance,
} from './instances.js';
import { error, show, type ValidationIssue } from './issues.js';
import { resolveValueSet, type CodeSet } from './valuesets.js';

type Json = Record<string, unknown>;

interface TypeRef { code: string; profile?: string[]; targetProfile?: string[] }
interface ElementDefinition {
  id: string;
  path: string;
  sliceName?: string;
  min?: number;
  max?: string;
  type?: TypeRef[];
  binding?: { strength: string; valueSet?: string };
  constraint?: { key: string; severity: 'error' | 'warning'; human: string; expression: string }[];
  slicing?: { discriminator: { type: string; path: string }[]; rules: string; ordered?: boolean };
  [key: string]: unknown;
}

/** The model's type of an element path (`Observation.component.value[x]` with its single type). */
function elementType(elementPath: string, single: string | undefined): string | undefined {
  const [root, ...steps] = elementPath.split('.');
  let type: string | undefined = root;
  for (const step of steps) {
    const key = step.endsWith('[x]') ? (single ? step.slice(0, -3) + capitalize(single) : undefined) : step;
    type = key && type ? generated.model.elements[type]?.[key]?.[0] : undefined;
  }
  return type;
}

/** Element properties that only document; everything else a profile states is enforced or refused. */
const DOCUMENTATION = new Set(['id', 'path', 'sliceName', 'short', 'definition', 'comment', 'requirements', 'alias', 'mustSupport', 'label']);
const ENFORCED = new Set(['min', 'max', 'type', 'binding', 'constraint', 'slicing']);

/** What a profile needs from its surroundings: value sets and the resource type behind a profile URL. */
export interface ProfileContext {
  localResources: Map<string, Json>;
  typeOfProfile(url: string): string | undefined;
}

interface Discriminator { path: string; expect: (value: unknown) => boolean }

/** A compiled element of the differential with its children and slices. */
class ElementNode {
  readonly children = new Map<string, ElementNode>();
  readonly slices = new Map<string, ElementNode>();
  def?: ElementDefinition;
  fixed?: unknown;
  pattern?: unknown;
  typeCodes?: Set<string>;
  targetTypes?: Set<string>;
  codes?: CodeSet;
  valueSet?: string;
  invariants: FhirPathInvariant[] = [];
  discriminators: Discriminator[] = [];

  constructor(readonly name: string, readonly path: string, readonly label: string) {}
}

export class CompiledProfile {
  private readonly root: ElementNode;
  /** Required bindings this profile states that cannot be enforced (value set unknown or defined by filters). */
  readonly unenforcedBindings: string[] = [];

  constructor(readonly url: string, readonly type: string, sd: Json, private readonly context: ProfileContext) {
    const elements = ((sd.differential as Json | undefined)?.element ?? []) as ElementDefinition[];
    this.root = new ElementNode(type, type, type);
    for (const def of elements) this.add(def);
    this.compileSlices(this.root);
  }

  /** Issues for a resource of this profile's type. */
  check(resource: Json): ValidationIssue[] {
    const issues: ValidationIssue[] = [];
    this.checkElement(this.root, [{ value: resource, path: this.type, type: this.type, key: this.type }], resource, issues);
    return issues;
  }

  private fail(message: string): never {
    throw new Error(`Profile ${this.url}: ${message}`);
  }

  private add(def: ElementDefinition): void {
    if (def.path !== def.id.replace(/:[^.]+/g, '')) this.fail(`element id ${def.id} does not match path ${def.path}`);
    const segments = def.id.split('.');
    if (segments[0] !== this.type) this.fail(`element ${def.id} is not on ${this.type}`);
    let node = this.root;
    for (const segment of segments.slice(1)) {
      const [name, slice] = segment.split(':');
      let child = node.children.get(name);
      if (!child) {
        child = new ElementNode(name, `${node.path}.${name}`, `${node.label}.${name}`);
        node.children.set(name, child);
      }
      node = child;
      if (slice) {
        let sliceNode = node.slices.get(slice);
        if (!sliceNode) {
          sliceNode = new ElementNode(name, node.path, `${node.label}:${slice}`);
          node.slices.set(slice, sliceNode);
        }
        node = sliceNode;
      }
    }
    if (node.def) this.fail(`element ${def.id} is defined twice`);
    node.def = def;
    this.compileElement(node, def);
  }

  private compileElement(node: ElementNode, def: ElementDefinition): void {
    for (const [key, value] of Object.entries(def)) {
      if (DOCUMENTATION.has(key) || ENFORCED.has(key)) continue;
      if (key.startsWith('fixed')) node.fixed = value;
      else if (key.startsWith('pattern')) node.pattern = value;
      else this.fail(`${def.id}: '${key}' is not supported by the gateway's validator`);
    }
    if (def.max !== undefined && def.max !== '*' && !/^\d+$/.test(def.max)) this.fail(`${def.id}: bad max ${def.max}`);
    if (def.type) {
      node.typeCodes = new Set(def.type.map((t) => t.code));
      const targets = def.type.flatMap((t) => t.targetProfile ?? []);
      if (targets.length) {
        node.targetTypes = new Set(targets.map((url) => this.context.typeOfProfile(url) ?? this.fail(`${def.id}: unknown target profile ${url}`)));
      }
      const profiled = def.type.filter((t) => t.profile?.length);
      if (profiled.length && !(def.sliceName && profiled.every((t) => t.code === 'Extension'))) {
        this.fail(`${def.id}: type profiles are supported only on extension slices`);
      }
    }
    if (def.binding?.strength === 'required' && def.binding.valueSet) {
      node.valueSet = def.binding.valueSet;
      node.codes = resolveValueSet(def.binding.valueSet, this.context.localResources);
      if (!node.codes) this.unenforcedBindings.push(`${def.id} → ${def.binding.valueSet}`);
    }
    const single = def.type?.length === 1 ? def.type[0].code : undefined;
    const base = def.path.endsWith('[x]') ? (single ? def.path.slice(0, -3) + capitalize(single) : undefined) : def.path;
    if (def.constraint?.length && /^[a-z]/.test(elementType(def.path, single) ?? '')) {
      this.fail(`${def.id}: constraints are supported on complex elements only; state them on the parent`);
    }
    for (const c of def.constraint ?? []) {
      const invariant = new FhirPathInvariant({ key: c.key, human: c.human, expression: c.expression, base: base ?? def.path, severity: c.severity });
      if (invariant.compile().broken) this.fail(`${def.id}: constraint ${c.key} does not compile: ${invariant.broken}`);
      node.invariants.push(invariant);
    }
  }

  /** Turns each slice's fixed/pattern values at the discriminator paths into match functions. */
  private compileSlices(node: ElementNode): void {
    for (const child of node.children.values()) this.compileSlices(child);
    for (const slice of node.slices.values()) this.compileSlices(slice);
    if (!node.slices.size) return;
    const slicing = node.def?.slicing;
    if (!slicing) this.fail(`${node.label} has slices but no slicing`);
    if (slicing.ordered || !['open', 'closed'].includes(slicing.rules)) this.fail(`${node.label}: only unordered open/closed slicing is supported`);
    for (const [name, slice] of node.slices) {
      slice.discriminators = slicing.discriminator.map((d) => {
        if (d.type !== 'value' && d.type !== 'pattern') this.fail(`${node.label}: discriminator type ${d.type} is not supported`);
        return { path: d.path, expect: this.discriminatorValue(slice, d.path, name) };
      });
    }
  }

  private discriminatorValue(slice: ElementNode, dpath: string, name: string): (value: unknown) => boolean {
    let target: ElementNode | undefined = slice;
    if (dpath !== '$this') for (const step of dpath.split('.')) target = target?.children.get(step);
    const fixed = target?.fixed;
    const pattern = target?.pattern;
    if (fixed !== undefined) return (v) => deepEqual(v, fixed);
    if (pattern !== undefined) return (v) => matchesPattern(v, pattern);
    const extensionUrl = dpath === 'url' ? slice.def?.type?.find((t) => t.code === 'Extension')?.profile?.[0] : undefined;
    if (extensionUrl) return (v) => v === extensionUrl;
    this.fail(`slice ${name} has no value for discriminator ${dpath}`);
  }

  private checkElement(node: ElementNode, instances: Instance[], resource: Json, issues: ValidationIssue[]): void {
    for (const instance of instances) this.checkValue(node, instance, resource, issues);
    for (const child of node.children.values()) {
      const all: Instance[] = [];
      for (const parent of instances) {
        if (!isObject(parent.value)) continue;
        const found = childInstances(parent, child.name);
        this.checkCardinality(child, found.length, `${parent.path}.${child.name.replace('[x]', '')}`, child.label, issues);
        if (child.slices.size) this.checkSlices(child, found, parent.path, resource, issues);
        all.push(...found);
      }
      if (all.length) this.checkElement(child, all, resource, issues);
    }
  }

  private checkSlices(node: ElementNode, found: Instance[], parentPath: string, resource: Json, issues: ValidationIssue[]): void {
    const matchedAny = new Set<Instance>();
    for (const [name, slice] of node.slices) {
      const matched = found.filter((i) =>
        slice.discriminators.every((d) => valuesAt(i.value, d.path).some((v) => d.expect(v))),
      );
      matched.forEach((i) => matchedAny.add(i));
      this.checkCardinality(slice, matched.length, `${parentPath}.${node.name.replace('[x]', '')}`, `${node.label}:${name}`, issues);
      this.checkElement(slice, matched, resource, issues);
    }
    if (node.def?.slicing?.rules === 'closed') {
      for (const i of found) {
        if (!matchedAny.has(i)) issues.push(error('structure', `${node.label}: ${show(i.value)} matches none of the allowed slices / 許可されていない要素です`, i.path));
      }
    }
  }

  private checkCardinality(node: ElementNode, count: number, path: string, label: string, issues: ValidationIssue[]): void {
    const def = node.def;
    if (!def) return;
    if (def.min !== undefined && count < def.min) {
      issues.push(error('required', `${label}: at least ${def.min} required, found ${count} (profile ${this.url}) / 必須要素がありません`, path));
    }
    if (def.max !== undefined && def.max !== '*' && count > Number(def.max)) {
      issues.push(error('structure', `${label}: at most ${def.max} allowed, found ${count} (profile ${this.url}) / 要素数が多すぎます`, path));
    }
  }

  private checkValue(node: ElementNode, instance: Instance, resource: Json, issues: ValidationIssue[]): void {
    const { value, path } = instance;
    const label = node.label;
    if (node.typeCodes && node.name.endsWith('[x]')) {
      const type = instance.key.slice(node.name.length - 3);
      if (![...node.typeCodes].some((code) => capitalize(code) === type)) {
        issues.push(error('structure', `${label}: type ${type} is not allowed by profile ${this.url} (allowed: ${[...node.typeCodes].join(', ')}) / このプロファイルでは使用できない型です`, path));
        return;
      }
    }
    if (node.targetTypes && isObject(value)) {
      const bad = referencedTypes(value, resource).filter((t) => !node.targetTypes!.has(t));
      if (bad.length) {
        issues.push(error('value', `${label}: must refer to ${[...node.targetTypes].join(' or ')}, not ${bad[0]} / 参照先のリソース型が不正です`, path));
      }
    }
    if (node.fixed !== undefined && !deepEqual(value, node.fixed)) {
      issues.push(error('value', `${label}: must be exactly ${show(node.fixed)} (found ${show(value)}) / 固定値と一致しません`, path));
    }
    if (node.pattern !== undefined && !matchesPattern(value, node.pattern)) {
      issues.push(error('value', `${label}: must match ${show(node.pattern)} (found ${show(value)}) / 指定パターンと一致しません`, path));
    }
    if (node.codes && !this.inValueSet(node.codes, instance)) {
      issues.push(error('code-invalid', `${label}: code ${show(value)} is not in value set ${node.valueSet} (e.g. ${node.codes.sample}) / 値セットにないコードです`, path));
    }
    if (isObject(value)) {
      for (const invariant of node.invariants) {
        const issue = invariant.check(value, path, resource, resource);
        if (issue) issues.push(issue);
      }
    }
  }

  private inValueSet(codes: CodeSet, instance: Instance): boolean {
    const value = instance.value;
    if (value === undefined) return true; // extension-only primitive: nothing to check
    if (typeof value === 'string') return codes.has(undefined, value);
    if (!isObject(value)) return false;
    const coded = (c: unknown) => isObject(c) && typeof c.code === 'string' && codes.has(c.system as string | undefined, c.code);
    if (Array.isArray(value.coding) || value.text !== undefined) return ((value.coding as unknown[] | undefined) ?? []).some(coded);
    return coded(value);
  }
}
