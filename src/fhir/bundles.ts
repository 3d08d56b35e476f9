import type { Bundle, BundleEntry, BundleLink, Resource } from '@medplum/fhirtypes';
import type { SearchResult } from '../store/search/execute.js';
import type { SearchRequest } from '../store/search/request.js';
import type { StoredResource } from '../store/stored.js';
import { informationOutcome } from './outcome.js';
import { subsetResource } from './subset.js';

/**
 * Bundles are assembled as JSON text around each resource's stored text, so a page of results is never
 * parsed and re-serialised unless _summary or _elements asks for a subset.
 */
export function searchsetJson(base: string, request: SearchRequest, result: SearchResult, query: [string, string][]): string {
  const links = pagingLinks(base, request, query, result);
  const head: Bundle = { resourceType: 'Bundle', type: 'searchset', ...(result.total !== undefined ? { total: result.total } : {}), link: links };
  const entries = [
    ...result.matches.map((m) => entryJson(base, m, 'match', request)),
    ...result.included.map((m) => entryJson(base, m, 'include')),
  ];
  if (request.ignored.length) {
    const outcome = informationOutcome(`Ignored unknown search parameters: ${request.ignored.join(', ')}`);
    entries.push(JSON.stringify({ resource: outcome, search: { mode: 'outcome' } }));
  }
  return withEntries(head, entries);
}

function entryJson(base: string, stored: StoredResource, mode: 'match' | 'include', request?: SearchRequest): string {
  const fullUrl = `${base}/${stored.resourceType}/${stored.id}`;
  const resource = request && (request.summary || request.elements) ? JSON.stringify(subsetResource(JSON.parse(stored.json!), request)) : stored.json;
  return `{"fullUrl":${JSON.stringify(fullUrl)},"resource":${resource},"search":{"mode":"${mode}"}}`;
}

function withEntries(head: Bundle, entries: string[]): string {
  const json = JSON.stringify(head);
  return entries.length ? `${json.slice(0, -1)},"entry":[${entries.join(',')}]}` : json;
}

function pagingLinks(base: string, request: SearchRequest, query: [string, string][], result: SearchResult): BundleLink[] {
  const kept = query.filter(([k]) => k !== '_offset' && !request.ignored.includes(k));
  const url = (offset: number) => {
    const params = new URLSearchParams(kept);
    if (offset > 0) params.set('_offset', String(offset));
    const qs = params.toString();
    return `${base}/${request.resourceType}${qs ? `?${qs}` : ''}`;
  };
  const links: BundleLink[] = [{ relation: 'self', url: url(request.offset) }];
  if (request.summary === 'count' || request.count === 0) return links;
  links.push({ relation: 'first', url: url(0) });
  const hasMore = result.total !== undefined ? request.offset + request.count < result.total : result.matches.length === request.count;
  if (hasMore) links.push({ relation: 'next', url: url(request.offset + request.count) });
  if (request.offset > 0) links.push({ relation: 'previous', url: url(Math.max(0, request.offset - request.count)) });
  if (result.total !== undefined && result.total > 0) {
    links.push({ relation: 'last', url: url(Math.floor((result.total - 1) / request.count) * request.count) });
  }
  return links;
}

/** A history Bundle: each version with its request, deletions without a resource. */
export function historyJson(base: string, selfUrl: string, rows: StoredResource[], total: number, next?: string): string {
  const head: Bundle = {
    resourceType: 'Bundle', type: 'history', total,
    link: [{ relation: 'self', url: selfUrl }, ...(next ? [{ relation: 'next', url: next }] : [])],
  };
  const entries = rows.map((row) => {
    const fullUrl = `${base}/${row.resourceType}/${row.id}`;
    const request: BundleEntry['request'] = {
      method: (row.method ?? (row.deleted ? 'DELETE' : 'PUT')) as 'PUT',
      url: row.method === 'POST' ? row.resourceType : `${row.resourceType}/${row.id}`,
    };
    const response = {
      status: row.deleted ? '204' : row.versionId === 1 ? '201' : '200',
      etag: `W/"${row.versionId}"`,
      lastModified: row.lastUpdated.toISOString(),
    };
    const resource = row.json ? `"resource":${row.json},` : '';
    return `{"fullUrl":${JSON.stringify(fullUrl)},${resource}"request":${JSON.stringify(request)},"response":${JSON.stringify(response)}}`;
  });
  return withEntries(head, entries);
}

export type { Resource };

/** Patient/$everything: one page of the compartment as a searchset, with a next link while more remain. */
export function everythingJson(self: string, rows: StoredResource[], total: number, next?: string): string {
  const head: Bundle = {
    resourceType: 'Bundle', type: 'searchset', total,
    link: [{ relation: 'self', url: self }, ...(next ? [{ relation: 'next', url: next }] : [])],
  };
  const base = self.slice(0, self.indexOf('/Patient/'));
  return withEntries(head, rows.map((r) => entryJson(base, r, 'match')));
}
