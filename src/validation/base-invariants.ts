import { NATIVE_INVARIANTS, QUANTITY_PROFILES } from './datatype-invariants.js';
import { FhirPathInvariant } from './fhirpath-invariant.js';
import { generated } from './generated.js';
import { error, type ValidationIssue } from './issues.js';
import type { Owner } from './walk.js';

type Json = Record<string, unknown>;
type Check = (node: Json, path: string, owner: Owner) => ValidationIssue | undefined;

const { invariants } = generated.model;

/** The dom-* invariants are about contained resources: nothing to evaluate without any. */
const CONTAINED_RULES = new Set(['dom-2', 'dom-3', 'dom-4', 'dom-5']);
const hasContained = (node: Json) => node.contained !== undefined;

const checksByType = new Map<string, Check[]>();

function buildChecks(type: string): Check[] {
  const sources = [...(invariants[type] ?? []), ...(QUANTITY_PROFILES.has(type) ? (invariants.Quantity ?? []) : [])];
  return sources.map((source): Check => {
    const native = NATIVE_INVARIANTS[source.key];
    if (native?.check) {
      const decide = native.check;
      const message = `${source.key}: ${source.human}`;
      return (node, path, owner) => (decide(node, owner.root) ? undefined : error('invariant', message, path));
    }
    const guard = native?.needsFhirPath ?? (CONTAINED_RULES.has(source.key) ? hasContained : undefined);
    const invariant = new FhirPathInvariant(source, guard);
    return (node, path, owner) => invariant.check(node, path, owner.resource, owner.root);
  });
}

/** The invariants FHIR R4 defines on a type or backbone element, for the walker to apply. */
export function baseChecks(type: string): Check[] {
  let checks = checksByType.get(type);
  if (!checks) {
    checks = buildChecks(type);
    checksByType.set(type, checks);
  }
  return checks;
}
