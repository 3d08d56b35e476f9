import type { Bundle, Resource } from '@medplum/fhirtypes';
import type { PoolClient } from 'pg';
import type { AuthContext } from '../auth/context.js';
import type { Caller } from '../fhir/caller.js';
import { FhirError } from '../fhir/outcome.js';
import { FhirService } from '../fhir/service.js';
import { processBundle } from '../fhir/transaction.js';
import type { Lookup, MappedResource, MappingIssue } from '../mapping/engine.js';
import { overlayTopLevel, sameValue } from '../mapping/merge.js';
import type { SourceLocation } from '../mapping/spec.js';
import { validateMapped } from '../mapping/validate.js';
import type { Services } from '../services.js';
import type { Database, Queryable } from '../store/db.js';

/**
 * Writing mapped resources, inside one transaction with the message's status: existing resources are
 * found by identifier, each target is locked, resources last written by a newer message are left alone
 * (an older message never rolls data back), HL7 update semantics are applied over the stored version,
 * the result is validated against the profiles and committed as one FHIR transaction Bundle (with its
 * index rows, AuditEvents and outbox rows). A resource that would not change is not written again.
 */

type Json = Record<string, unknown>;

export interface ApplyContext {
  services: Services;
  caller: Caller;
  auth: AuthContext;
  messageId: number;
  /** The time the message describes; undefined when it has none (then it is applied without ordering). */
  messageTime?: Date;
  /** FHIR base URL (for the transaction response). */
  base: string;
}

export interface Applied {
  /** `Type/id/_history/n` of every version written. */
  written: string[];
  /** `Type/id` the message describes exactly as stored: not written again. */
  unchanged: string[];
  /** `Type/id` a newer message has written since: left as they are. */
  older: string[];
}

/** The message cannot be applied: what is wrong, where in the source, and the HTTP status it answers. */
export class ApplyError extends Error {
  constructor(readonly issues: MappingIssue[], readonly status = 422) {
    super(issues.map((i) => i.reason).join('; '));
  }
}

/** The store seen through one open transaction, so processBundle's transaction joins the message's own. */
export function boundTo(services: Services, tx: PoolClient): { services: Services; fhir: FhirService } {
  const db: Database = {
    ...services.db,
    query: tx.query.bind(tx) as Queryable['query'],
    transaction: (fn) => fn(tx),
  };
  const bound = { ...services, db };
  return { services: bound, fhir: new FhirService(db, services.repo, services.audit) };
}

const identifierQuery = (system: string, value: string) => `identifier=${encodeURIComponent(system)}|${encodeURIComponent(value)}`;

/** The sender's own resources with this identifier (at most 2 are read: more than one is ambiguous). */
async function ownMatches(fhir: FhirService, caller: Caller, type: string, system: string, value: string, q: Queryable) {
  const matches = await fhir.matchesFor(caller, type, identifierQuery(system, value), q);
  return matches.filter((m) => m.owner === caller.organizationId && !m.deleted);
}

export interface LookupResult {
  resolved: Map<string, string>;
  failures: { lookup: Lookup; issue: MappingIssue }[];
}

/** Finds the existing resources lookups name (the subject of a care plan or record) among the sender's own. */
export async function resolveLookups(fhir: FhirService, caller: Caller, lookups: readonly Lookup[], q: Queryable): Promise<LookupResult> {
  const resolved = new Map<string, string>();
  const failures: LookupResult['failures'] = [];
  for (const lookup of lookups) {
    if (resolved.has(lookup.reference)) continue;
    const found = await ownMatches(fhir, caller, lookup.resourceType, lookup.system, lookup.value, q);
    if (found.length === 1) {
      resolved.set(lookup.reference, `${lookup.resourceType}/${found[0].id}`);
      continue;
    }
    const reason = found.length
      ? `${lookup.value}: more than one ${lookup.resourceType} carries this identifier / 複数の${lookup.resourceType}が該当します`
      : `${lookup.value}: no ${lookup.describe} / 該当する${lookup.resourceType}が登録されていません`;
    failures.push({ lookup, issue: { kind: 'required', location: lookup.location, reason } });
  }
  return { resolved, failures };
}

/** Replaces references (`from` → `to`) everywhere in the resources. */
export function rewriteReferences(mapped: readonly MappedResource[], renames: ReadonlyMap<string, string>): void {
  if (!renames.size) return;
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === 'object') {
      const obj = node as Json;
      if (typeof obj.reference === 'string' && renames.has(obj.reference)) obj.reference = renames.get(obj.reference);
      Object.values(obj).forEach(walk);
    }
  };
  mapped.forEach((m) => walk(m.resource));
}

const keyOf = (m: MappedResource) => `${m.resourceType}/${m.id}`;

function withoutMeta(resource: Json): Json {
  const { meta: _meta, ...rest } = resource;
  return rest;
}

export async function applyMapped(tx: PoolClient, ctx: ApplyContext, input: readonly MappedResource[]): Promise<Applied> {
  const { services, fhir } = boundTo(ctx.services, tx);
  const mapped = input.map((m) => ({ ...m, resource: structuredClone(m.resource) }));
  await adoptExistingIds(fhir, ctx.caller, mapped, tx);

  for (const key of [...new Set(mapped.map(keyOf))].sort()) {
    await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`ingest:${key}`]);
  }
  const newer = ctx.messageTime ? await newerWritten(tx, mapped, ctx.messageTime) : new Set<string>();
  const current = mapped.filter((m) => !newer.has(keyOf(m)));

  const toWrite: MappedResource[] = [];
  const unchanged: string[] = [];
  for (const m of current) {
    const stored = await services.repo.lockCurrent(tx, m.resourceType, m.id);
    const storedJson = stored && !stored.deleted && stored.json && stored.owner === ctx.caller.organizationId ? (JSON.parse(stored.json) as Json) : undefined;
    if (storedJson && m.merge) m.resource = { ...overlayTopLevel(storedJson, m.resource, m.deletions), meta: m.resource.meta };
    if (storedJson && sameValue(withoutMeta(storedJson), withoutMeta(m.resource))) unchanged.push(keyOf(m));
    else toWrite.push(m);
  }

  const invalid = validateMapped(toWrite);
  if (invalid.length) throw new ApplyError(invalid);

  let written: string[] = [];
  if (toWrite.length) {
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: toWrite.map((m) => ({ resource: m.resource as unknown as Resource, request: { method: 'PUT', url: keyOf(m) } })),
    };
    const response = await processBundle(fhir, services, ctx.caller, ctx.auth, bundle, ctx.base).catch((err: unknown) => {
      throw err instanceof FhirError ? fromFhirError(err, toWrite) : err;
    });
    written = (response.entry ?? []).map((e) => e.response?.location ?? '').filter(Boolean);
  }
  if (ctx.messageTime) await advanceClocks(tx, [...toWrite.map(keyOf), ...unchanged], ctx.messageTime, ctx.messageId);
  return { written, unchanged, older: [...newer] };
}

/** A resource with an identity (the Patient of PID-3) updates the sender's existing one with that identifier. */
async function adoptExistingIds(fhir: FhirService, caller: Caller, mapped: MappedResource[], q: Queryable): Promise<void> {
  const renames = new Map<string, string>();
  for (const m of mapped) {
    if (!m.identity) continue;
    const found = await ownMatches(fhir, caller, m.resourceType, m.identity.system, m.identity.value, q);
    if (found.length > 1) {
      throw new ApplyError([{
        kind: 'conflict', location: m.provenance.identifier ?? m.origin,
        reason: `more than one ${m.resourceType} carries identifier ${m.identity.value} / 同じ識別子の${m.resourceType}が複数あります`,
      }], 409);
    }
    if (found.length === 1 && found[0].id !== m.id) {
      renames.set(keyOf(m), `${m.resourceType}/${found[0].id}`);
      m.id = found[0].id;
      m.resource.id = found[0].id;
    }
  }
  rewriteReferences(mapped, renames);
}

async function newerWritten(tx: Queryable, mapped: readonly MappedResource[], time: Date): Promise<Set<string>> {
  if (!mapped.length) return new Set();
  const { rows } = await tx.query<{ resource_type: string; resource_id: string }>(
    `SELECT c.resource_type, c.resource_id FROM ingest_resource_clock c
     JOIN unnest($1::text[], $2::text[]) AS t(resource_type, resource_id) USING (resource_type, resource_id)
     WHERE c.message_time > $3`,
    [mapped.map((m) => m.resourceType), mapped.map((m) => m.id), time],
  );
  return new Set(rows.map((r) => `${r.resource_type}/${r.resource_id}`));
}

async function advanceClocks(tx: Queryable, keys: string[], time: Date, messageId: number): Promise<void> {
  if (!keys.length) return;
  const [types, ids] = [keys.map((k) => k.split('/')[0]), keys.map((k) => k.split('/')[1])];
  await tx.query(
    `INSERT INTO ingest_resource_clock (resource_type, resource_id, message_time, message_id)
     SELECT t, i, $3, $4 FROM unnest($1::text[], $2::text[]) AS u(t, i)
     ON CONFLICT (resource_type, resource_id) DO UPDATE SET message_time = EXCLUDED.message_time, message_id = EXCLUDED.message_id
     WHERE ingest_resource_clock.message_time <= EXCLUDED.message_time`,
    [types, ids, time, messageId],
  );
}

/** A refusal by the FHIR layer (ownership, profile, rule), located at the source of the entry it names. */
function fromFhirError(err: FhirError, written: readonly MappedResource[]): ApplyError {
  const issues = err.issues.map((i) => {
    const index = Number(/Bundle\.entry\[(\d+)\]/.exec(i.expression?.[0] ?? i.diagnostics)?.[1]);
    const location: SourceLocation = Number.isInteger(index) && written[index] ? written[index].origin : {};
    return { kind: 'invalid' as const, location, reason: i.diagnostics };
  });
  return new ApplyError(issues, err.status >= 500 ? 422 : err.status);
}
