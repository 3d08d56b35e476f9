import { newId } from '../store/ids.js';
import type { Bundle, BundleEntry, Resource } from '@medplum/fhirtypes';
import { checkScope, type AuthContext, type Interaction } from '../auth/context.js';
import type { Services } from '../services.js';
import type { Queryable } from '../store/db.js';
import { isSupportedType } from '../store/resource-types.js';
import type { PreparedWrite } from '../store/write-batch.js';
import { searchsetJson } from './bundles.js';
import type { Caller } from './caller.js';
import { hasPercentNul } from '../nul-characters.js';
import { FhirError, badRequest, preconditionFailed } from './outcome.js';
import { collectReferences, rewriteReferences } from './references.js';
import { etagOf, versionFromEtag, type FhirResult } from './results.js';
import { assertId, type FhirService, type PlannedWrite } from './service.js';
import { assertValidResource } from './validate.js';

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

interface ParsedEntry {
  index: number;
  method: Method;
  type: string;
  id?: string;
  query?: string;
  version?: string;
  fullUrl?: string;
  resource?: Resource;
  ifMatch?: number;
  ifNoneExist?: string;
}

const ORDER: Record<Method, number> = { DELETE: 0, POST: 1, PUT: 2, GET: 3 };
const INTERACTION: Record<Method, Interaction> = { DELETE: 'delete', POST: 'create', PUT: 'update', GET: 'read' };

/** POST /fhir with a Bundle of type transaction (all or nothing) or batch (each entry on its own). */
export async function processBundle(
  fhir: FhirService, services: Services, caller: Caller, auth: AuthContext, body: unknown, base: string,
): Promise<Bundle> {
  const bundle = body as Bundle;
  if (bundle?.resourceType !== 'Bundle') throw badRequest('POST to the base URL takes a Bundle / Bundleを送信してください', ['resourceType']);
  if (bundle.type !== 'transaction' && bundle.type !== 'batch')
    throw badRequest(`Bundle.type must be transaction or batch, not ${bundle.type}`, ['Bundle.type']);
  if (bundle.entry !== undefined && !Array.isArray(bundle.entry)) throw badRequest('Bundle.entry is a list of entries', ['Bundle.entry']);
  const entries = (bundle.entry ?? []).map((entry, index) => parseEntry(entry, index, auth));
  if (bundle.type === 'batch') return runBatch(fhir, caller, entries, base);
  return runTransaction(fhir, services, caller, bundle, entries, base);
}

function parseEntry(entry: BundleEntry, index: number, auth: AuthContext): ParsedEntry {
  const at = (msg: string) => badRequest(`Bundle.entry[${index}]: ${msg}`, [`Bundle.entry[${index}]`]);
  const method = entry?.request?.method as Method | undefined;
  const url = entry?.request?.url;
  if (!method || !(method in ORDER) || !url || typeof url !== 'string')
    throw at('request.method (GET, POST, PUT or DELETE) and request.url are required');
  for (const [name, value] of [['fullUrl', entry.fullUrl], ['request.ifMatch', entry.request?.ifMatch], ['request.ifNoneExist', entry.request?.ifNoneExist]])
    if (value !== undefined && typeof value !== 'string') throw at(`${name} must be a string`);
  if (hasPercentNul(url) || hasPercentNul(entry.request?.ifNoneExist ?? ''))
    throw at('request.url and request.ifNoneExist may not hold a NUL character (%00) / NUL文字は使用できません');
  const [path, query] = url.replace(/^\//, '').split('?', 2);
  const [type, id, history, version] = path.split('/');
  if (!isSupportedType(type)) throw at(`resource type ${type} is not held by this gateway`);
  if (type === 'AuditEvent') throw at('AuditEvents are kept apart and append-only: record, search and read them at /AuditEvent, not in a Bundle');
  if (history && history !== '_history') throw at(`unsupported URL ${url}`);
  if (id) assertId(id);
  checkScope(auth, type, method === 'GET' && !id ? 'search' : INTERACTION[method]);
  const parsed: ParsedEntry = { index, method, type, id, query, version, fullUrl: entry.fullUrl, resource: entry.resource };
  if (entry.request?.ifMatch) {
    parsed.ifMatch = versionFromEtag(entry.request.ifMatch);
    if (parsed.ifMatch === undefined) throw at(`ifMatch must be an ETag such as W/"3"`);
  }
  parsed.ifNoneExist = entry.request?.ifNoneExist;
  if ((method === 'POST' || method === 'PUT') && !entry.resource) throw at(`${method} needs a resource`);
  return parsed;
}

async function runBatch(fhir: FhirService, caller: Caller, entries: ParsedEntry[], base: string): Promise<Bundle> {
  const responses: BundleEntry[] = [];
  for (const entry of entries) {
    try {
      responses.push(toResponseEntry(await runAlone(fhir, caller, entry, base)));
    } catch (err) {
      if (!(err instanceof FhirError)) throw err;
      responses.push({ response: { status: String(err.status), outcome: err.toOperationOutcome() } });
    }
  }
  return { resourceType: 'Bundle', type: 'batch-response', entry: responses };
}

async function runAlone(fhir: FhirService, caller: Caller, e: ParsedEntry, base: string): Promise<FhirResult> {
  switch (e.method) {
    case 'GET':
      return readEntry(fhir, caller, e, base);
    case 'POST':
      return fhir.create(caller, e.resource, e.type, e.ifNoneExist);
    case 'PUT':
      return e.id
        ? fhir.update(caller, e.type, e.id, e.resource, e.ifMatch)
        : fhir.conditionalUpdate(caller, e.type, e.query ?? '', e.resource, e.ifMatch);
    case 'DELETE':
      return e.id ? fhir.delete(caller, e.type, e.id) : fhir.conditionalDelete(caller, e.type, e.query ?? '');
  }
}

async function readEntry(fhir: FhirService, caller: Caller, e: ParsedEntry, base: string, q?: Queryable): Promise<FhirResult> {
  if (e.id && e.version) return fhir.vread(caller, e.type, e.id, e.version, q);
  if (e.id) return fhir.read(caller, e.type, e.id, q);
  const query = [...new URLSearchParams(e.query ?? '')] as [string, string][];
  const { request, result } = await fhir.search(caller, e.type, query, false, q);
  return { status: 200, body: searchsetJson(base, request, result, query) };
}

async function runTransaction(
  fhir: FhirService, services: Services, caller: Caller, bundle: Bundle, entries: ParsedEntry[], base: string,
): Promise<Bundle> {
  assertDistinctTargets(entries);
  const receiptKey = bundle.identifier?.value ? `${bundle.identifier.system ?? ''}|${bundle.identifier.value}` : undefined;
  return services.db.transaction(async (tx) => {
    if (receiptKey) {
      const earlier = await claimReceipt(tx, caller, receiptKey);
      if (earlier) return earlier;
    }
    const results = await applyEntries(fhir, caller, entries, base, tx);
    const response: Bundle = {
      resourceType: 'Bundle',
      type: 'transaction-response',
      entry: entries.map((e) => toResponseEntry(results.get(e.index)!)),
    };
    if (receiptKey) {
      await tx.query('UPDATE bundle_receipt SET response = $3 WHERE owner = $1 AND identifier = $2', [
        caller.organizationId ?? '', receiptKey, JSON.stringify(response),
      ]);
    }
    return response;
  });
}

/** Returns the stored response when this Bundle.identifier was applied before (by the same sender). */
async function claimReceipt(tx: Queryable, caller: Caller, key: string): Promise<Bundle | undefined> {
  const owner = caller.organizationId ?? '';
  const inserted = await tx.query(
    'INSERT INTO bundle_receipt (owner, identifier) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING identifier',
    [owner, key],
  );
  if (inserted.rowCount) return undefined;
  const { rows } = await tx.query<{ response: Bundle }>('SELECT response FROM bundle_receipt WHERE owner = $1 AND identifier = $2', [owner, key]);
  return rows[0]?.response;
}

async function applyEntries(
  fhir: FhirService, caller: Caller, entries: ParsedEntry[], base: string, tx: Queryable,
): Promise<Map<number, FhirResult>> {
  const ids = await resolveIds(fhir, caller, entries, tx);
  const results = new Map<number, FhirResult>();
  const writes: PreparedWrite[] = [];
  const ordered = [...entries].sort((a, b) => ORDER[a.method] - ORDER[b.method] || a.index - b.index);
  for (const e of ordered.filter((x) => x.method !== 'GET')) {
    const planned = await planEntry(fhir, caller, e, ids, tx).catch((err) => {
      throw atEntry(err, e.index);
    });
    if (planned.write) writes.push(planned.write);
    results.set(e.index, planned.result);
  }
  if (writes.length) await fhir.commitWrites(writes, tx);
  for (const e of ordered.filter((x) => x.method === 'GET')) {
    results.set(e.index, await readEntry(fhir, caller, e, base, tx).catch((err) => { throw atEntry(err, e.index); }));
  }
  return results;
}

interface Resolution {
  /** fullUrl (or conditional reference) → `Type/id`. */
  references: Map<string, string>;
  /** Entry index → the id its write targets, or an existing match for a conditional create. */
  targets: Map<number, { id: string; existing?: boolean }>;
}

async function resolveIds(fhir: FhirService, caller: Caller, entries: ParsedEntry[], tx: Queryable): Promise<Resolution> {
  const references = new Map<string, string>();
  const targets = new Map<number, { id: string; existing?: boolean }>();
  for (const e of entries) {
    if (e.method === 'POST') {
      let target: { id: string; existing?: boolean } = { id: newId() };
      if (e.ifNoneExist) {
        const matches = await fhir.matchesFor(caller, e.type, e.ifNoneExist, tx);
        if (matches.length > 1) throw atEntry(preconditionFailed(`ifNoneExist matched ${matches.length} resources`), e.index);
        if (matches.length === 1) target = { id: matches[0].id, existing: true };
      }
      targets.set(e.index, target);
      if (e.fullUrl) references.set(e.fullUrl, `${e.type}/${target.id}`);
    } else if (e.method === 'PUT') {
      let id = e.id;
      if (!id) {
        const matches = await fhir.matchesFor(caller, e.type, e.query ?? '', tx);
        if (matches.length > 1) throw atEntry(preconditionFailed(`conditional update matched ${matches.length} resources`), e.index);
        id = matches[0]?.id ?? e.resource?.id ?? newId();
      }
      targets.set(e.index, { id });
      if (e.fullUrl) references.set(e.fullUrl, `${e.type}/${id}`);
    }
  }
  await resolveConditionalReferences(fhir, caller, entries, references, tx);
  return { references, targets };
}

/** `Patient?identifier=…` inside a resource resolves to the one visible match, or the transaction fails. */
async function resolveConditionalReferences(
  fhir: FhirService, caller: Caller, entries: ParsedEntry[], references: Map<string, string>, tx: Queryable,
): Promise<void> {
  for (const e of entries) {
    for (const ref of collectReferences(e.resource)) {
      const m = /^([A-Z][A-Za-z]+)\?(.+)$/.exec(ref);
      if (!m || references.has(ref)) continue;
      const matches = await fhir.matchesFor(caller, m[1], m[2], tx);
      if (matches.length !== 1)
        throw atEntry(preconditionFailed(`conditional reference ${ref} matched ${matches.length} resources (needs exactly 1)`), e.index);
      references.set(ref, `${m[1]}/${matches[0].id}`);
    }
  }
}

async function planEntry(fhir: FhirService, caller: Caller, e: ParsedEntry, ids: Resolution, tx: Queryable): Promise<PlannedWrite> {
  if (e.method === 'DELETE') {
    if (e.id) return fhir.planDelete(caller, e.type, e.id, tx);
    const matches = await fhir.matchesFor(caller, e.type, e.query ?? '', tx);
    if (matches.length > 1) throw preconditionFailed(`conditional delete matched ${matches.length} resources`);
    return matches.length ? fhir.planDelete(caller, e.type, matches[0].id, tx) : { result: { status: 204 } };
  }
  const target = ids.targets.get(e.index)!;
  const resource = assertValidResource(rewriteReferences(e.resource, ids.references), e.type);
  if (e.method === 'POST') {
    if (target.existing) return { result: { status: 200, location: `${e.type}/${target.id}` } };
    await fhir.checkRules(caller, resource, tx);
    return fhir.planCreate(caller, resource, target.id);
  }
  if (resource.id && resource.id !== target.id) throw badRequest(`resource.id ${resource.id} differs from the URL's id ${target.id}`);
  return fhir.planUpdate(caller, { ...resource, id: target.id }, e.ifMatch, tx);
}

function assertDistinctTargets(entries: ParsedEntry[]): void {
  const seen = new Set<string>();
  for (const e of entries) {
    if (e.method === 'GET' || !e.id) continue;
    const key = `${e.type}/${e.id}`;
    if (seen.has(key)) throw badRequest(`Bundle.entry[${e.index}]: ${key} appears twice in one transaction`, [`Bundle.entry[${e.index}]`]);
    seen.add(key);
  }
}

function atEntry(err: unknown, index: number): unknown {
  if (!(err instanceof FhirError)) return err;
  return new FhirError(
    err.status,
    err.issues.map((i) => ({
      ...i,
      diagnostics: `Bundle.entry[${index}]: ${i.diagnostics}`,
      expression: [`Bundle.entry[${index}]`, ...(i.expression ?? []).map((x) => `Bundle.entry[${index}].resource.${x.replace(/^[A-Z]\w+\./, '')}`)],
    })),
  );
}

function toResponseEntry(result: FhirResult): BundleEntry {
  const resource = typeof result.body === 'string' ? (JSON.parse(result.body) as Resource) : result.body;
  return {
    ...(resource ? { resource } : {}),
    response: {
      status: String(result.status),
      ...(result.location ? { location: result.location } : {}),
      ...(result.versionId ? { etag: etagOf(result.versionId) } : {}),
      ...(result.lastUpdated ? { lastModified: result.lastUpdated.toISOString() } : {}),
    },
  };
}
