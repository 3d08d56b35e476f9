import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fromRoot } from '../paths.js';
import { CompiledProfile } from './profile-compiler.js';
import { isResourceType } from './structure.js';

type Json = Record<string, unknown>;

export const GATEWAY_BASE = 'http://renkei.jp/fhir';
const JP_CORE_PROFILE = /^http:\/\/jpfhir\.jp\/fhir\/[a-z]+\/StructureDefinition\/JP_([A-Za-z]+)/;
const FHIR_PROFILE = /^http:\/\/hl7\.org\/fhir\/StructureDefinition\/([A-Za-z]+)$/;

export interface ProfileRegistry {
  profiles: Map<string, CompiledProfile>;
  /** Conformance resources in profiles/ by canonical URL (value sets, code systems, naming systems…). */
  resources: Map<string, Json>;
}

/**
 * Loads profiles/*.json (StructureDefinitions with derivation constraint and a differential, plus the
 * ValueSets, CodeSystems and NamingSystems they use) and compiles each profile once.
 */
export function loadProfiles(dir = fromRoot('profiles')): ProfileRegistry {
  const resources = new Map<string, Json>();
  const definitions: Json[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
    const resource = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as Json;
    // NamingSystem has no url in R4: its preferred unique id stands for it.
    const ids = (resource.uniqueId as { value?: string; type?: string }[] | undefined) ?? [];
    const url = resource.url ?? ids.find((u) => u.type === 'uri')?.value;
    if (typeof url !== 'string') throw new Error(`${file}: a conformance resource needs a url`);
    if (resources.has(url)) throw new Error(`${file}: ${url} is defined twice`);
    resources.set(url, resource);
    if (resource.resourceType === 'StructureDefinition') definitions.push(resource);
  }
  const typeOf = new Map(definitions.map((sd) => [sd.url as string, sd.type as string]));
  const typeOfProfile = (url: string): string | undefined => {
    const bare = url.split('|')[0];
    const type = typeOf.get(bare) ?? FHIR_PROFILE.exec(bare)?.[1] ?? JP_CORE_PROFILE.exec(bare)?.[1];
    return type && isResourceType(type) ? type : undefined;
  };
  const profiles = new Map<string, CompiledProfile>();
  for (const sd of definitions) {
    const url = sd.url as string;
    const type = sd.type as string;
    if (sd.derivation !== 'constraint' || !sd.differential) throw new Error(`${url}: only constraint profiles with a differential are supported`);
    if (!isResourceType(type)) throw new Error(`${url}: unknown resource type ${type}`);
    if (typeOfProfile(sd.baseDefinition as string) !== type) throw new Error(`${url}: baseDefinition is not a ${type} profile`);
    profiles.set(url, new CompiledProfile(url, type, sd, { localResources: resources, typeOfProfile }));
  }
  return { profiles, resources };
}
