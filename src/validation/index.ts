import { baseChecks } from './base-invariants.js';
import { error, hasErrors, type ValidationIssue } from './issues.js';
import { GATEWAY_BASE, loadProfiles } from './profiles.js';
import { validateStructure } from './structure.js';
import { walkResource, type Visitor } from './walk.js';

export type { ValidationIssue };
export { hasErrors };

type Json = Record<string, unknown>;

const registry = loadProfiles();

/** The profile the gateway's own mapped output of each type must satisfy. */
const GATEWAY_PROFILES: Record<string, string> = {
  Patient: `${GATEWAY_BASE}/StructureDefinition/renkei-patient`,
  MedicationRequest: `${GATEWAY_BASE}/StructureDefinition/renkei-medicationrequest`,
  CarePlan: `${GATEWAY_BASE}/StructureDefinition/renkei-careplan`,
  Consent: `${GATEWAY_BASE}/StructureDefinition/renkei-consent`,
  Communication: `${GATEWAY_BASE}/StructureDefinition/renkei-communication`,
  Organization: `${GATEWAY_BASE}/StructureDefinition/renkei-organization`,
};
for (const url of Object.values(GATEWAY_PROFILES)) {
  if (!registry.profiles.has(url)) throw new Error(`profiles/ lacks the gateway profile ${url}`);
}

export interface ValidateOptions {
  /** Profiles to check besides those the resource claims in meta.profile; each must be known. */
  profiles?: string[];
}

/** A walker visitor applying FHIR R4's invariants of each element's type. */
function invariantVisitor(issues: ValidationIssue[]): Visitor {
  return (type, node, path, owner) => {
    const checks = baseChecks(type);
    for (let i = 0; i < checks.length; i++) {
      const issue = checks[i](node, path, owner);
      if (issue) issues.push(issue);
    }
  };
}

/**
 * Validates a resource: structure against the FHIR R4 JSON schema, FHIR R4's invariants, then every
 * profile the resource claims in meta.profile and every profile in `options.profiles`. A claimed profile
 * the gateway does not know is reported as information and not checked. Only `error` issues reject.
 */
export function validateResource(resource: unknown, options: ValidateOptions = {}): ValidationIssue[] {
  const { structure, rules } = validateInStages(resource, options);
  return [...structure, ...rules];
}

/**
 * The same checks, reported by stage: `structure` (the R4 JSON schema: the body is not valid FHIR) and
 * `rules` (invariants and profiles, checked only when the structure is sound). Writers answer the first
 * with 400 and the second with 422.
 */
export function validateInStages(resource: unknown, options: ValidateOptions = {}): { structure: ValidationIssue[]; rules: ValidationIssue[] } {
  const structure = validateStructure(resource);
  if (hasErrors(structure)) return { structure, rules: [] };
  return { structure, rules: validateRules(resource as Json, options) };
}

/** The second stage alone, for a resource whose structure is sound: FHIR R4's invariants and the profiles. */
export function validateRules(r: Record<string, unknown>, options: ValidateOptions = {}): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const type = r.resourceType as string;
  walkResource(r, invariantVisitor(issues), issues);
  // A null among the claims is the walker's error already (no _profile entry stands beside it).
  const claimed = (((r.meta as Json | undefined)?.profile as unknown[] | undefined) ?? []).filter((u): u is string => typeof u === 'string');
  const urls = new Set([...claimed, ...(options.profiles ?? [])].map((u) => u.split('|')[0]));
  for (const url of urls) {
    const profile = registry.profiles.get(url);
    if (!profile) {
      if (options.profiles?.includes(url)) throw new Error(`Unknown profile ${url}`);
      issues.push({
        severity: 'information',
        code: 'informational',
        diagnostics: `Profile ${url} is not known to the gateway and was not checked / 未知のプロファイルのため検証していません`,
        expression: [`${type}.meta.profile`],
      });
      continue;
    }
    if (profile.type !== type) {
      issues.push(error('structure', `Profile ${url} is for ${profile.type}, not ${type} / リソース型とプロファイルが一致しません`, `${type}.meta.profile`));
      continue;
    }
    issues.push(...profile.check(r));
  }
  return unique(issues);
}

/** A profile may restate a base invariant (Consent's ppc-1): report each finding once. */
function unique(issues: ValidationIssue[]): ValidationIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const what = i.code === 'invariant' ? i.diagnostics.split(':')[0] : i.diagnostics;
    const key = `${i.severity}|${i.code}|${what}|${i.expression?.join(',')}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Canonical URLs of the gateway's profiles. */
export function knownProfiles(): string[] {
  return [...registry.profiles.keys()].sort();
}

/** The profile the gateway's own mapped output of `resourceType` must satisfy, e.g. Patient → renkei-patient. */
export function gatewayProfileFor(resourceType: string): string | undefined {
  return Object.hasOwn(GATEWAY_PROFILES, resourceType) ? GATEWAY_PROFILES[resourceType] : undefined;
}
