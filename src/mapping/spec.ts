/**
 * The shape of a mapping file (mappings/**.json): which source fields become which FHIR elements,
 * through which named transforms. One file per source format or message type; the engine in this
 * folder runs any of them. See mappings/README.md for the language.
 */

export type SourceKind = 'hl7v2' | 'table';

export interface MappingSpec {
  id: string;
  description: string;
  source: SourceKind;
  /** HL7: the message types (MSH-9.1^MSH-9.2) this file maps. */
  messageTypes?: string[];
  /** Table: columns that must be present in the header row. */
  requiredColumns?: string[];
  /** Sender facts the mapping uses beyond the sender's own identifiers (loaded before it runs). */
  needs?: ('partners')[];
  resources: ResourceSpec[];
}

export interface Condition {
  path: string;
  /** Holds when the value is one of these. */
  in?: string[];
  notIn?: string[];
  /** Holds when the path has (true) or lacks (false) a value. */
  present?: boolean;
}

export interface ForEach {
  /** One resource per segment with this id. */
  segment?: string;
  /** One resource per group starting at each segment with this id (up to the next one). */
  group?: string;
}

export interface ResourceSpec {
  name: string;
  type: string;
  /** A profile the output claims (meta.profile) and is validated against. */
  profile?: string;
  forEach?: ForEach;
  /** The resource is made only when every condition holds. */
  where?: Condition[];
  /**
   * Business identifier, the id derives from it: source paths (alternatives with `|`), {{templates}},
   * `=literal` text, or `?path` for a part that may be empty.
   */
  key: string[];
  /** An existing resource with this identifier (owned by the sender) is updated instead of a new id made. */
  identity?: { system: string; value: string | string[] };
  /** Not made at all: an existing resource found by identifier (e.g. the subject of a care record). */
  lookup?: { system: string; value: string | string[]; describe: string };
  /** replace (default): the message has the whole resource; merge: only the top-level elements it has change. */
  update?: 'replace' | 'merge';
  /** Required unless the resource is a lookup. */
  rules?: Rule[];
}

export interface Rule {
  /** FHIR path in the resource: `a.b[0].c`, `a[+]` (append), `value[x]` (type chosen by the transform). */
  to: string;
  from?: string | string[];
  const?: unknown;
  /** Reference to another resource of this mapping, by its name. */
  ref?: string;
  /** References to sender facts (e.g. `partners`: the sender's 協力医療機関). */
  refs?: 'partners';
  transform?: string;
  args?: Record<string, unknown>;
  /** Map each repetition of `from` and append each result. */
  each?: boolean;
  required?: boolean;
  where?: Condition[];
  /** Wraps the value in an extension: `{ url, <path>: value }`. */
  wrap?: { url: string; path: string };
}

/** Where a value was in the source: HL7 segment/field, or CSV line/column. */
export interface SourceLocation {
  segment?: string;
  sequence?: number;
  field?: number;
  repetition?: number;
  component?: number;
  subcomponent?: number;
  line?: number;
  column?: string;
}

export const TEMPLATE = /\{\{([A-Za-z][\w.]*)\}\}/g;

/** Template variables every mapping may use. */
export const KNOWN_VARIABLES = new Set([
  'sender.organizationId', 'sender.code', 'sender.patientIdSystem', 'sender.practitionerIdSystem',
  'sender.careProviderNo', 'message.time', 'message.controlId', 'message.type', 'file.name',
]);

export class SpecError extends Error {}

/** Checks a mapping file's structure; transforms and paths are checked by the engine that loads it. */
export function assertSpec(value: unknown, file: string): MappingSpec {
  const fail = (msg: string): never => {
    throw new SpecError(`${file}: ${msg}`);
  };
  const spec = value as MappingSpec;
  if (!spec || typeof spec !== 'object') fail('not a JSON object');
  if (typeof spec.id !== 'string' || typeof spec.description !== 'string') fail('id and description are required');
  if (spec.source !== 'hl7v2' && spec.source !== 'table') fail('source must be hl7v2 or table');
  if (!Array.isArray(spec.resources) || !spec.resources.length) fail('resources must list at least one resource');
  const names = new Set<string>();
  for (const r of spec.resources) {
    const at = `resource ${r?.name ?? '?'}`;
    if (typeof r?.name !== 'string' || typeof r.type !== 'string') fail(`${at}: name and type are required`);
    if (names.has(r.name)) fail(`${at}: name used twice`);
    names.add(r.name);
    if (!Array.isArray(r.key) || !r.key.length) fail(`${at}: key must list at least one part`);
    if (!r.lookup && !Array.isArray(r.rules)) fail(`${at}: rules are required`);
    if (r.update && r.update !== 'replace' && r.update !== 'merge') fail(`${at}: update must be replace or merge`);
    for (const rule of r.rules ?? []) {
      if (typeof rule.to !== 'string') fail(`${at}: every rule needs "to"`);
      const sources = [rule.from !== undefined, rule.const !== undefined, rule.ref !== undefined, rule.refs !== undefined].filter(Boolean);
      if (sources.length !== 1) fail(`${at} → ${rule.to}: give exactly one of from, const, ref, refs`);
    }
  }
  for (const r of spec.resources) {
    for (const rule of r.rules ?? []) {
      if (rule.ref && !names.has(rule.ref)) fail(`resource ${r.name} → ${rule.to}: ref ${rule.ref} names no resource`);
    }
  }
  for (const text of JSON.stringify(spec).matchAll(TEMPLATE)) {
    if (!KNOWN_VARIABLES.has(text[1])) fail(`unknown template variable {{${text[1]}}}`);
  }
  return spec;
}
