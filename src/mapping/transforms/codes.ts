import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fromRoot } from '../../paths.js';
import type { SourceValue } from '../source.js';
import type { Args, TransformContext, TransformDefinition } from './types.js';
import { needsString, present, stringArg, textOf, TransformError } from './types.js';

/**
 * Coded values: CE/CWE (code^text^system^alt code^alt text^alt system) → CodeableConcept or Coding with
 * the code-system name made a URI; lookups through a table in the mapping file; concept maps (JLAC10 →
 * LOINC) that keep the source coding; and concepts found by their display in one of the gateway's
 * CodeSystems (サービス種別 by name).
 */

type Coding = { system?: string; code: string; display?: string };

function systemsArg(args: Args): Record<string, string> | undefined {
  return args.systems as Record<string, string> | undefined;
}

function codingAt(ce: SourceValue, first: number, args: Args, ctx: TransformContext): Coding | undefined {
  const code = textOf(ce.part(first));
  if (!code) return undefined;
  const display = textOf(ce.part(first + 1));
  const system = ctx.codeSystems.resolve(textOf(ce.part(first + 2)), code, systemsArg(args));
  return present({ system, code, display }) as Coding;
}

function checkSystems(args: Args): string | undefined {
  const systems = args.systems;
  if (systems === undefined) return undefined;
  if (typeof systems !== 'object' || systems === null || Object.values(systems).some((v) => typeof v !== 'string')) {
    return 'args.systems maps code-system names to URIs';
  }
  return undefined;
}

export const codeableConcept: TransformDefinition = {
  inputs: [1, 1],
  checkArgs: checkSystems,
  apply: ([ce], args, ctx) => {
    const codings = [codingAt(ce, 1, args, ctx), codingAt(ce, 4, args, ctx)].filter((c): c is Coding => !!c);
    const text = textOf(ce.part(2)) || textOf(ce.part(5));
    if (!codings.length && !text) return undefined;
    return present({ coding: codings, text });
  },
};

export const coding: TransformDefinition = {
  inputs: [1, 1],
  checkArgs: checkSystems,
  apply: ([ce], args, ctx) => codingAt(ce, 1, args, ctx),
};

function tableOf(args: Args): Record<string, unknown> {
  return args.table as Record<string, unknown>;
}

/** args.table: source value → FHIR value; args.default when absent from the table, else a table-value error. */
export const lookup: TransformDefinition = {
  inputs: [1, 1],
  checkArgs: (args) => (typeof args.table === 'object' && args.table !== null ? undefined : 'args.table (an object) is required'),
  apply: ([v], args) => {
    const key = textOf(v);
    if (!key) return undefined;
    const table = tableOf(args);
    if (Object.hasOwn(table, key)) return structuredClone(table[key]);
    const upper = key.toUpperCase();
    if (Object.hasOwn(table, upper)) return structuredClone(table[upper]);
    if ('default' in args) return structuredClone(args.default);
    const allowed = Object.keys(table).join(', ');
    throw new TransformError(`"${key}" is not one of ${allowed} / 定義されていない値です`, 'table-value');
  },
};

/**
 * args.map: source code → target coding (e.g. JLAC10 → LOINC). The result has the target coding first
 * and the source coding after it, text from the source.
 */
export const conceptMap: TransformDefinition = {
  inputs: [1, 1],
  checkArgs: (args) => (typeof args.map === 'object' && args.map !== null ? checkSystems(args) : 'args.map (an object) is required'),
  apply: ([ce], args, ctx) => {
    const source = codingAt(ce, 1, args, ctx);
    if (!source) return undefined;
    const target = (args.map as Record<string, Coding>)[source.code];
    if (!target) throw new TransformError(`code ${source.code} has no mapping / 対応するコードがありません`, 'table-value');
    const text = textOf(ce.part(2)) || target.display;
    return present({ coding: [present({ ...target }), source], text });
  },
};

interface Concept {
  code: string;
  display?: string;
  designation?: { value: string }[];
  concept?: Concept[];
}

const conceptIndex = new Map<string, Map<string, Concept>>();

function conceptsOf(system: string): Map<string, Concept> {
  let index = conceptIndex.get(system);
  if (index) return index;
  index = new Map();
  const dir = fromRoot('profiles');
  for (const file of readdirSync(dir).filter((f) => f.startsWith('CodeSystem-'))) {
    const cs = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as { url: string; concept?: Concept[] };
    if (cs.url !== system) continue;
    const add = (list: Concept[] = []) => list.forEach((c) => {
      for (const name of [c.code, c.display, ...(c.designation ?? []).map((d) => d.value)]) if (name) index!.set(normalizeName(name), c);
      add(c.concept);
    });
    add(cs.concept);
  }
  conceptIndex.set(system, index);
  return index;
}

const normalizeName = (text: string) => text.normalize('NFKC').replace(/[\s・()（）]/g, '');

/**
 * args.system: one of the gateway's CodeSystems (profiles/). The source text (a code or a display name,
 * e.g. 通所介護) → CodeableConcept with that concept and the text as sent; a name the CodeSystem does not
 * have keeps its text only.
 */
export const conceptByName: TransformDefinition = {
  inputs: [1, 1],
  checkArgs: (args) => {
    const missing = needsString('system')(args);
    if (missing) return missing;
    return conceptsOf(String(args.system)).size ? undefined : `no CodeSystem ${String(args.system)} in profiles/`;
  },
  apply: ([v], args) => {
    const text = textOf(v);
    if (!text) return undefined;
    const system = stringArg(args, 'system')!;
    const concept = conceptsOf(system).get(normalizeName(text));
    return concept ? { coding: [present({ system, code: concept.code, display: concept.display })], text } : { text };
  },
};
