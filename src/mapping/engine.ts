import { createHash } from 'node:crypto';
import { codeSystems } from './code-systems.js';
import { mergeInto } from './merge.js';
import { EMPTY_CELL, type Source, type SourceValue } from './source.js';
import { TEMPLATE, type Condition, type MappingSpec, type ResourceSpec, type Rule, type SourceLocation } from './spec.js';
import { compact, parseTarget, setAt, TargetError, topElement } from './target.js';
import { TRANSFORMS, TransformError, type TransformContext, type TransformDefinition } from './transforms/index.js';

/**
 * Runs a mapping file over a source: for each resource the file describes (once, or for each segment /
 * group / row), evaluates its key into a deterministic id and its rules into FHIR elements. Nothing here
 * knows a message type: the file says everything, the transforms do the conversions.
 */

type Json = Record<string, unknown>;

export interface MappingInput {
  /** Template variables: sender.organizationId, sender.patientIdSystem, message.time… */
  vars: Readonly<Record<string, string>>;
  /** The sender's 協力医療機関 (references), for `refs: partners`. */
  partners?: readonly Json[];
}

export interface MappedResource {
  name: string;
  resourceType: string;
  id: string;
  resource: Json;
  identity?: { system: string; value: string };
  merge: boolean;
  /** Top-level elements the source deletes explicitly (HL7 `""`). */
  deletions: string[];
  /** Where each top-level element came from. */
  provenance: Record<string, SourceLocation>;
  /** Where each top-level element the mapping writes would come from, sent or not (to report what is missing). */
  sources: Record<string, SourceLocation>;
  origin: SourceLocation;
}

export type IssueKind = 'required' | 'data-type' | 'table-value' | 'conflict' | 'invalid';

export interface MappingIssue {
  kind: IssueKind;
  location: SourceLocation;
  reason: string;
}

/** A reference to an existing resource found by identifier (`Type?identifier=system|value`). */
export interface Lookup {
  reference: string;
  resourceType: string;
  system: string;
  value: string;
  describe: string;
  location: SourceLocation;
}

export interface MappingOutput {
  resources: MappedResource[];
  lookups: Lookup[];
  issues: MappingIssue[];
}

export class MappingError extends Error {}

const DETERMINISTIC_ID_LENGTH = 40;

/** The id of a mapped resource: the sender's Organization, the type and the business identifier. */
export function deterministicId(organizationId: string, resourceType: string, key: readonly string[]): string {
  return createHash('sha256').update([organizationId, resourceType, ...key].join('\u001f')).digest('hex').slice(0, DETERMINISTIC_ID_LENGTH);
}

export function interpolate(text: string, vars: Readonly<Record<string, string>>): string {
  return text.replace(TEMPLATE, (_, name: string) => vars[name] ?? '');
}

function interpolateDeep(value: unknown, vars: Readonly<Record<string, string>>): unknown {
  if (typeof value === 'string') return value.includes('{{') ? interpolate(value, vars) : value;
  if (Array.isArray(value)) return value.map((v) => interpolateDeep(v, vars));
  if (value && typeof value === 'object') {
    const copy: Json = {};
    for (const key in value) copy[key] = interpolateDeep((value as Json)[key], vars);
    return copy;
  }
  return value;
}

const valueParts = (value: string | string[]): string[] => (Array.isArray(value) ? value : [value]);

/** Identifier values made of several source values (保険者番号:被保険者番号) are joined with ':'. */
export const IDENTIFIER_JOIN = ':';

/** A rule writing a whole top-level element (`address`, `address[+]`, `name[0]`): an HL7 `""` there deletes it. */
const WHOLE_ELEMENT = /^[A-Za-z][A-Za-z0-9]*(\[(\+|=|0)\])?$/;

const fromList = (rule: Rule): string[] => (rule.from === undefined ? [] : Array.isArray(rule.from) ? rule.from : [rule.from]);

const hasTemplate = (value: unknown): boolean => JSON.stringify(value ?? null).includes('{{');

/** What a rule needs at run time, worked out once when the mapping file is loaded. */
interface CompiledRule {
  rule: Rule;
  from: string[];
  /** The top-level element the rule writes. */
  top: string;
  transform: TransformDefinition;
  /** The args when they hold no {{template}} (shared by every run: transforms only read them). */
  fixedArgs?: Record<string, unknown>;
  /** A constant that is a primitive without a template (no copy needed). */
  fixedConst?: unknown;
  /** The rule writes a whole top-level element: an HL7 `""` there deletes it. */
  wholeElement: boolean;
}

const EMPTY_ARGS: Record<string, unknown> = Object.freeze({}) as Record<string, unknown>;

function compileRule(rule: Rule): CompiledRule {
  const constant = rule.const;
  return {
    rule,
    from: fromList(rule),
    top: topElement(rule.to),
    transform: TRANSFORMS[rule.transform ?? 'text'],
    ...(!hasTemplate(rule.args) ? { fixedArgs: rule.args ?? EMPTY_ARGS } : {}),
    ...(constant !== undefined && (constant === null || typeof constant !== 'object') && !hasTemplate(constant) ? { fixedConst: constant } : {}),
    wholeElement: WHOLE_ELEMENT.test(rule.to),
  };
}

export class MappingEngine {
  private readonly context: TransformContext = { codeSystems: codeSystems() };
  private readonly byName: Map<string, ResourceSpec>;
  private readonly compiled = new Map<ResourceSpec, CompiledRule[]>();

  constructor(readonly spec: MappingSpec, checkPath: (path: string) => string | undefined) {
    this.byName = new Map(spec.resources.map((r) => [r.name, r]));
    this.check(checkPath);
    for (const r of spec.resources) this.compiled.set(r, (r.rules ?? []).map(compileRule));
  }

  /** Refuses a mapping file that names an unknown transform, a bad path or wrong args. */
  private check(checkPath: (path: string) => string | undefined): void {
    const fail = (where: string, msg: string): never => {
      throw new MappingError(`${this.spec.id}: ${where}: ${msg}`);
    };
    const paths = (list: string[], where: string) => list.forEach((p) => {
      if (!p.includes('{{')) {
        const bad = checkPath(p);
        if (bad) fail(where, bad);
      }
    });
    for (const r of this.spec.resources) {
      paths(r.key.filter((k) => !k.startsWith('=')).map((k) => k.replace(/^\?/, '')), `${r.name}.key`);
      paths((r.where ?? []).map((c) => c.path), `${r.name}.where`);
      if (r.identity) paths(valueParts(r.identity.value), `${r.name}.identity`);
      if (r.lookup) paths(valueParts(r.lookup.value), `${r.name}.lookup`);
      for (const rule of r.rules ?? []) {
        const where = `${r.name} → ${rule.to}`;
        if (!parseTarget(rule.to)) fail(where, 'not a target path');
        paths(fromList(rule), where);
        paths((rule.where ?? []).map((c) => c.path), where);
        if (rule.ref === r.name) fail(where, 'a resource cannot refer to itself');
        if (rule.from === undefined) continue;
        const name = rule.transform ?? 'text';
        const transform = TRANSFORMS[name];
        if (!transform) fail(where, `unknown transform ${name} (known: ${Object.keys(TRANSFORMS).join(', ')})`);
        const count = rule.each ? 1 : fromList(rule).length;
        if (count < transform.inputs[0] || count > transform.inputs[1]) fail(where, `${name} takes ${transform.inputs.join('–')} inputs, given ${count}`);
        const bad = transform.checkArgs?.(rule.args ?? {});
        if (bad) fail(where, `${name}: ${bad}`);
      }
    }
  }

  run(root: Source, input: MappingInput): MappingOutput {
    const run = new MappingRun(this, input, this.context);
    for (const spec of this.spec.resources) {
      if (spec.lookup) continue;
      const contexts = spec.forEach ? root.items(spec.forEach) : [root];
      for (const source of contexts) if (holds(spec.where, source)) run.build(spec, source);
    }
    return run.finish();
  }

  specNamed(name: string): ResourceSpec {
    return this.byName.get(name)!;
  }

  rulesOf(spec: ResourceSpec): readonly CompiledRule[] {
    return this.compiled.get(spec)!;
  }
}

function holds(conditions: Condition[] | undefined, source: Source): boolean {
  return (conditions ?? []).every((c) => {
    const value = source.values(c.path)[0]?.text.trim() ?? '';
    if (c.present !== undefined && Boolean(value) !== c.present) return false;
    if (c.in && !c.in.includes(value)) return false;
    if (c.notIn && c.notIn.includes(value)) return false;
    return true;
  });
}

class MappingRun {
  private readonly resources: MappedResource[] = [];
  private readonly issues: MappingIssue[] = [];
  private readonly lookups = new Map<string, Lookup>();
  private readonly args = new Map<Rule, Record<string, unknown>>();
  /** Ids made in this run, by type and key (a resource referred to from each group is hashed once). */
  private readonly ids = new Map<string, string>();

  constructor(
    private readonly engine: MappingEngine,
    private readonly input: MappingInput,
    private readonly context: TransformContext,
  ) {}

  private issue(kind: IssueKind, location: SourceLocation, reason: string): void {
    if (!this.issues.some((i) => i.reason === reason && JSON.stringify(i.location) === JSON.stringify(location))) {
      this.issues.push({ kind, location, reason });
    }
  }

  /** A path's first text, or a {{template}}. */
  private textAt(source: Source, part: string): string {
    return part.includes('{{') ? interpolate(part, this.input.vars) : (source.values(part).find((v) => !v.isNull)?.text.trim() ?? '');
  }

  /** All parts' texts joined, or '' when one is missing. */
  private joinedText(source: Source, value: string | string[]): string {
    const texts = valueParts(value).map((p) => this.textAt(source, p));
    return texts.every(Boolean) ? texts.join(IDENTIFIER_JOIN) : '';
  }

  private idOf(spec: ResourceSpec, source: Source): string | undefined {
    const parts: string[] = [];
    for (const part of spec.key) {
      if (part.startsWith('=')) {
        parts.push(part.slice(1));
        continue;
      }
      const optional = part.startsWith('?');
      const value = this.textAt(source, optional ? part.slice(1) : part);
      if (!value && optional) {
        parts.push('');
        continue;
      }
      if (!value) {
        this.issue('required', source.locate(part), `${part} is required to identify the ${spec.type} / ${spec.type}を特定する値がありません`);
        return undefined;
      }
      parts.push(value);
    }
    const key = `${spec.type}\u001e${parts.join('\u001f')}`;
    let id = this.ids.get(key);
    if (!id) this.ids.set(key, (id = deterministicId(this.input.vars['sender.organizationId'] ?? '', spec.type, parts)));
    return id;
  }

  build(spec: ResourceSpec, source: Source): void {
    const id = this.idOf(spec, source);
    if (!id) return;
    const resource: Json = spec.profile ? { resourceType: spec.type, id, meta: { profile: [spec.profile] } } : { resourceType: spec.type, id };
    const mapped: MappedResource = {
      name: spec.name, resourceType: spec.type, id, resource, merge: spec.update === 'merge', deletions: [], provenance: {}, sources: {}, origin: source.origin(),
    };
    if (spec.identity) {
      const value = this.joinedText(source, spec.identity.value);
      if (value) mapped.identity = { system: interpolate(spec.identity.system, this.input.vars), value };
    }
    const rules = this.engine.rulesOf(spec);
    for (const compiled of rules) {
      if (!holds(compiled.rule.where, source)) continue;
      this.apply(spec, compiled, source, mapped);
    }
    // Where each element not written would have come from (located only for those: a failed profile rule names it).
    for (const { from, top } of rules) {
      const first = from[0];
      if (first && !first.includes('{{') && !mapped.provenance[top]) mapped.sources[top] ??= source.locate(first);
    }
    compact(resource);
    this.resources.push(mapped);
  }

  private apply(spec: ResourceSpec, compiled: CompiledRule, source: Source, mapped: MappedResource): void {
    const { rule, from, top } = compiled;
    try {
      const values = this.evaluate(compiled, source, mapped);
      if (!values.length) {
        if (rule.required && rule.refs === 'partners') {
          this.issue('required', locationOf(from, source), `${spec.type}.${rule.to}: the sender has no active 協力医療機関 agreement (OrganizationAffiliation) to address this to / 協力医療機関が登録されていません`);
        } else if (rule.required) {
          const what = from.length ? from.join(', ') : rule.ref ?? rule.to;
          this.issue('required', locationOf(from, source), `${spec.type}.${rule.to} needs ${what} / 必須項目がありません`);
        }
        return;
      }
      for (const value of values) setAt(mapped.resource, rule.to, rule.wrap ? wrapped(rule.wrap, value) : value);
      mapped.provenance[top] ??= locationOf(from, source);
    } catch (err) {
      if (err instanceof TransformError) this.issue(err.kind, locationOf(from, source), `${spec.type}.${rule.to}: ${err.message}`);
      else if (err instanceof TargetError) this.issue('invalid', locationOf(from, source), `mapping ${this.engine.spec.id}: ${err.message}`);
      else throw err;
    }
  }

  /** The rule's value(s); empty when the source has none. */
  private evaluate(compiled: CompiledRule, source: Source, mapped: MappedResource): unknown[] {
    const { rule, from, transform } = compiled;
    if (rule.const !== undefined) return ['fixedConst' in compiled ? compiled.fixedConst : interpolateDeep(rule.const, this.input.vars)];
    if (rule.ref) {
      const ref = this.reference(rule.ref, source);
      return ref ? [ref] : [];
    }
    if (rule.refs === 'partners') return this.input.partners?.length ? [structuredClone(this.input.partners)] : [];
    const args = compiled.fixedArgs ?? this.argsOf(rule);
    if (rule.each) {
      const values = source.values(from[0]).filter((v) => !v.isNull);
      if (!values.length) noteDeletion(compiled, source, mapped);
      return values.map((v) => transform.apply([v], args, this.context)).filter((v) => v !== undefined);
    }
    const inputs: SourceValue[] = from.map((p) => source.values(p).find((v) => !v.isNull) ?? EMPTY_CELL);
    if (inputs.every((v) => v.isEmpty)) {
      noteDeletion(compiled, source, mapped);
      return [];
    }
    const value = transform.apply(inputs, args, this.context);
    return value === undefined ? [] : [value];
  }

  /** A rule's args with the run's {{templates}} filled in, once per run. */
  private argsOf(rule: Rule): Record<string, unknown> {
    let args = this.args.get(rule);
    if (!args) {
      args = interpolateDeep(rule.args ?? {}, this.input.vars) as Record<string, unknown>;
      this.args.set(rule, args);
    }
    return args;
  }

  private reference(name: string, source: Source): Json | undefined {
    const target = this.engine.specNamed(name);
    if (!holds(target.where, source)) return undefined;
    if (!target.lookup) {
      const id = this.idOf(target, source);
      return id ? { reference: `${target.type}/${id}` } : undefined;
    }
    const value = this.joinedText(source, target.lookup.value);
    const parts = valueParts(target.lookup.value);
    const first = parts.find((p) => !this.textAt(source, p)) ?? parts[parts.length - 1];
    const location = first.includes('{{') ? source.origin() : source.locate(first);
    if (!value) {
      this.issue('required', location, `${target.lookup.describe} is required / ${target.lookup.describe}がありません`);
      return undefined;
    }
    const system = interpolate(target.lookup.system, this.input.vars);
    const reference = `${target.type}?identifier=${encodeURIComponent(system)}|${encodeURIComponent(value)}`;
    if (!this.lookups.has(reference)) {
      this.lookups.set(reference, { reference, resourceType: target.type, system, value, describe: target.lookup.describe, location });
    }
    return { reference };
  }

  /** Resources made twice (same type and id) are merged; different values for one element are a conflict. */
  finish(): MappingOutput {
    const byId = new Map<string, MappedResource>();
    for (const r of this.resources) {
      const key = `${r.resourceType}/${r.id}`;
      const first = byId.get(key);
      if (!first) {
        byId.set(key, r);
        continue;
      }
      const conflict = mergeInto(first.resource, r.resource);
      if (conflict) this.issue('conflict', r.origin, `${key}: ${conflict} differs from an earlier part of the same ${r.resourceType} / 同じリソースに異なる値があります`);
      first.deletions.push(...r.deletions.filter((d) => !first.deletions.includes(d)));
      for (const [k, v] of Object.entries(r.provenance)) first.provenance[k] ??= v;
    }
    return { resources: [...byId.values()], lookups: [...this.lookups.values()], issues: this.issues };
  }
}

/** Where a rule's value is in the source (its first path), for an error or the element's provenance. */
function locationOf(from: readonly string[], source: Source): SourceLocation {
  return from.length ? source.locate(from[0]) : source.origin();
}

/** A merge update whose source sends `""` for a whole element: the element is deleted from the stored resource. */
function noteDeletion(compiled: CompiledRule, source: Source, mapped: MappedResource): void {
  const { from } = compiled;
  if (from.length === 1 && mapped.merge && compiled.wholeElement && source.values(from[0])[0]?.isNull) mapped.deletions.push(compiled.top);
}

function wrapped(wrap: { url: string; path: string }, value: unknown): Json {
  const extension: Json = { url: wrap.url };
  setAt(extension, wrap.path, value);
  return extension;
}
