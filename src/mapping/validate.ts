import { validateResource } from '../validation/index.js';
import type { MappedResource, MappingIssue } from './engine.js';
import type { SourceLocation } from './spec.js';

/**
 * Mapping output checked against FHIR R4 and the profiles it claims (the gateway's JP Core-based
 * profiles) before anything is stored. Each finding is reported at the source field that produced the
 * element, so the sender is told which segment/field or column to correct.
 */
export function validateMapped(mapped: readonly MappedResource[]): MappingIssue[] {
  const issues: MappingIssue[] = [];
  for (const m of mapped) {
    for (const found of validateResource(m.resource)) {
      if (found.severity !== 'error' && found.severity !== 'fatal') continue;
      issues.push({
        kind: found.code === 'required' ? 'required' : 'invalid',
        location: locationOf(m, found.expression?.[0]),
        reason: `${m.resourceType}: ${found.diagnostics}${found.expression?.length ? ` (${found.expression[0]})` : ''}`,
      });
    }
  }
  return issues;
}

function locationOf(m: MappedResource, expression: string | undefined): SourceLocation {
  const element = expression?.replace(/^[A-Z][A-Za-z]+\.?/, '').match(/^[A-Za-z][A-Za-z0-9]*/)?.[0];
  return (element && (m.provenance[element] ?? m.sources[element])) || m.origin;
}
