import { readFileSync } from 'node:fs';
import { fromRoot } from '../paths.js';

/**
 * Code-system names as HL7 v2 and CSV sources send them (HOT9, YJ, MR9P, JC10, JAMISDP01, HL70162…) →
 * FHIR code-system URIs, from mappings/code-systems.json. A name may map by code length (`HOT`: 7, 9 or
 * 13 digits). Local tables (99xxx) and unknown names give a coding without a system: the code and its
 * text are kept, and no URI is invented.
 */

type Entry = string | { byCodeLength: Record<string, string> };

export class CodeSystems {
  constructor(private readonly table: Readonly<Record<string, Entry>>) {}

  static load(file = fromRoot('mappings', 'code-systems.json')): CodeSystems {
    const json = JSON.parse(readFileSync(file, 'utf8')) as { systems: Record<string, Entry> };
    return new CodeSystems(json.systems);
  }

  /** The URI for a source's code-system name (overrides first), or undefined when none is known. */
  resolve(name: string, code: string, overrides?: Readonly<Record<string, string>>): string | undefined {
    const key = name.trim();
    if (!key) return undefined;
    if (/^(urn:|https?:\/\/)/i.test(key)) return key;
    const entry = overrides?.[key] ?? this.table[key] ?? this.table[key.toUpperCase()];
    if (entry === undefined) return undefined;
    if (typeof entry === 'string') return entry;
    return entry.byCodeLength[String(code.trim().length)];
  }

  has(name: string): boolean {
    return Object.hasOwn(this.table, name);
  }
}

let shared: CodeSystems | undefined;

export function codeSystems(): CodeSystems {
  shared ??= CodeSystems.load();
  return shared;
}
