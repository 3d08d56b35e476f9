import type { Resource } from '@medplum/fhirtypes';
import type { StoredResource } from '../store/stored.js';

/** What an interaction answers, before HTTP (or a Bundle entry) shapes it. */
export interface FhirResult {
  status: number;
  /** The resource as JSON text (straight from the store) or as an object. */
  body?: string | Resource;
  location?: string;
  versionId?: number;
  lastUpdated?: Date;
}

export function etagOf(versionId: number): string {
  return `W/"${versionId}"`;
}

/** Parses `W/"3"` or `"3"` (If-Match) into a version number. */
export function versionFromEtag(etag: string): number | undefined {
  const m = /^(?:W\/)?"?(\d+)"?$/.exec(etag.trim());
  return m ? Number(m[1]) : undefined;
}

export function storedResult(status: number, stored: StoredResource, withLocation = false): FhirResult {
  return {
    status,
    body: stored.json ?? undefined,
    versionId: stored.versionId,
    lastUpdated: stored.lastUpdated,
    ...(withLocation ? { location: `${stored.resourceType}/${stored.id}/_history/${stored.versionId}` } : {}),
  };
}

export function resourceResult(status: number, resource: Resource, withLocation: boolean): FhirResult {
  const versionId = Number(resource.meta?.versionId);
  return {
    status,
    body: resource,
    versionId,
    lastUpdated: resource.meta?.lastUpdated ? new Date(resource.meta.lastUpdated) : undefined,
    ...(withLocation ? { location: `${resource.resourceType}/${resource.id}/_history/${versionId}` } : {}),
  };
}
