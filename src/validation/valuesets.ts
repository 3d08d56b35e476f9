import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

type Json = Record<string, unknown>;

/** Membership test for a required binding. */
export interface CodeSet {
  /** `system` undefined: a bare code (element of type code/string/uri), matched against any system. */
  has(system: string | undefined, code: string): boolean;
  /** A few allowed codes, for messages. */
  readonly sample: string;
}

interface Include {
  system?: string;
  concept?: { code: string }[];
  filter?: unknown[];
  valueSet?: string[];
}

const generatedFile = path.join(path.dirname(fileURLToPath(import.meta.url)), 'generated', 'fhir-valuesets.json');
let r4Expansions: Record<string, [string, string][]> | undefined;

/** Expansions of R4's own small value sets, read on first use (only profiles need them). */
function r4ValueSet(url: string): [string, string][] | undefined {
  r4Expansions ??= JSON.parse(readFileSync(generatedFile, 'utf8')) as Record<string, [string, string][]>;
  return r4Expansions[url.split('|')[0]];
}

function fromPairs(pairs: [string, string][], wholeSystems: string[] = []): CodeSet {
  const exact = new Set(pairs.map(([s, c]) => `${s}|${c}`));
  const codes = new Set(pairs.map(([, c]) => c));
  const systems = new Set(wholeSystems);
  const shown = [...pairs.slice(0, 8).map(([, c]) => c), ...wholeSystems].join(', ');
  return {
    has: (system, code) =>
      system === undefined ? codes.has(code) : exact.has(`${system}|${code}`) || (systems.has(system) && code.length > 0),
    sample: pairs.length > 8 ? `${shown}, …` : shown,
  };
}

const flatten = (concepts: Json[] = []): string[] =>
  concepts.flatMap((c) => [c.code as string, ...flatten(c.concept as Json[] | undefined)]);

/**
 * Resolves a value set: the gateway's own (in profiles/, with its code systems) or one of FHIR R4's.
 * An include of a whole external code system (HOT9, YJ, LOINC…) accepts any code of that system: the
 * code system's content is not available to check single codes. Undefined when the value set cannot be
 * enforced (unknown, or defined by filters).
 */
export function resolveValueSet(url: string, local: Map<string, Json>): CodeSet | undefined {
  const vs = local.get(url.split('|')[0]);
  if (!vs) {
    const pairs = r4ValueSet(url);
    return pairs ? fromPairs(pairs) : undefined;
  }
  const pairs: [string, string][] = [];
  const wholeSystems: string[] = [];
  const compose = vs.compose as { include?: Include[]; exclude?: unknown[] } | undefined;
  if (!compose?.include || compose.exclude) return undefined;
  for (const inc of compose.include) {
    if (inc.filter?.length || inc.valueSet?.length || !inc.system) return undefined;
    if (inc.concept) {
      for (const c of inc.concept) pairs.push([inc.system, c.code]);
      continue;
    }
    const cs = local.get(inc.system);
    if (cs?.resourceType === 'CodeSystem') {
      for (const code of flatten(cs.concept as Json[] | undefined)) pairs.push([inc.system, code]);
    } else {
      wholeSystems.push(inc.system);
    }
  }
  return fromPairs(pairs, wholeSystems);
}
