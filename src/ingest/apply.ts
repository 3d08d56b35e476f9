import type { Resource } from '@medplum/fhirtypes';
import { checkScope, type AuthContext } from '../auth/context.js';
import type { Caller } from '../fhir/caller.js';
import { FhirError } from '../fhir/outcome.js';
import { FhirService } from '../fhir/service.js';
import type { Lookup, MappedResource, MappingIssue } from '../mapping/engine.js';
import { overlayTopLevel, sameValue } from '../mapping/merge.js';
import { validateMapped } from '../mapping/validate.js';
import type { Services } from '../services.js';
import type { Database, Queryable } from '../store/db.js';
import { lockKeys } from '../store/locks.js';
import { STORED_COLUMNS, toStored, type StoredResource, type StoredRow } from '../store/stored.js';
import type { PreparedWrite } from '../store/write-batch.js';

/**
 * Writing mapped resources, inside one transaction with the message's status: existing resources are
 * found by identifier, each target is locked, resources last written by a newer message are left alone
 * (an older message never rolls data back), HL7 update semantics are applied over the stored version,
 * the result is validated against the profiles (once) and committed as FHIR updates in that transaction
 * (with their index rows, AuditEvents and outbox rows). A resource that would not change is not written again.
 */

type Json = Record<string, unknown>;

export interface ApplyContext {
  services: Services;
  caller: Caller;
  auth: AuthContext;
  messageId: number;
  /** The time the message describes; undefined when it has none (then it is applied without ordering). */
  messageTime?: Date;
  /**
   * Records the outcome in the same transaction (e.g. the message's status), and the resources' clocks
   * with it in one statement; when absent the clocks are written here.
   */
  finish?: (tx: Queryable, applied: Applied, clocks: Clocks | undefined) => Promise<void>;
}

/** Resources a message wrote or found unchanged, and its time: each remembers the message that wrote it last. */
export interface Clocks {
  types: string[];
  ids: string[];
  time: Date;
  messageId: number;
}

/** A CTE (`clocks`) advancing the clocks; its values start at `$first` (types, ids, time, message id). */
export function clocksCte(first: number): string {
  const [types, ids, time, message] = [first, first + 1, first + 2, first + 3].map((n) => `$${n}`);
  return `clocks AS (INSERT INTO ingest_resource_clock (resource_type, resource_id, message_time, message_id)
     SELECT t, i, ${time}::timestamptz, ${message}::bigint FROM unnest(${types}::text[], ${ids}::text[]) AS u(t, i)
     ON CONFLICT (resource_type, resource_id) DO UPDATE SET message_time = EXCLUDED.message_time, message_id = EXCLUDED.message_id
     WHERE ingest_resource_clock.message_time <= EXCLUDED.message_time)`;
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
export function boundTo(services: Services, tx: Queryable): { services: Services; fhir: FhirService } {
  const db: Database = {
    ...services.db,
    query: tx.query.bind(tx),
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

export async function applyMapped(tx: Queryable, ctx: ApplyContext, input: readonly MappedResource[]): Promise<Applied> {
  const { fhir } = boundTo(ctx.services, tx);
  const mapped = input.map((m) => ({ ...m, resource: structuredClone(m.resource) }));
  await adoptExistingIds(fhir, ctx.caller, mapped, tx);
  const targets = await lockTargets(tx, mapped, ctx.messageTime);

  const toWrite: { m: MappedResource; stored: StoredResource | null }[] = [];
  const unchanged: string[] = [];
  const older: string[] = [];
  for (const m of mapped) {
    const target = targets.get(keyOf(m));
    if (target?.newer) {
      older.push(keyOf(m));
      continue;
    }
    const stored = target?.stored ?? null;
    const storedJson = stored && !stored.deleted && stored.json && stored.owner === ctx.caller.organizationId ? (JSON.parse(stored.json) as Json) : undefined;
    if (storedJson && m.merge) m.resource = { ...overlayTopLevel(storedJson, m.resource, m.deletions), meta: m.resource.meta };
    if (storedJson && sameValue(withoutMeta(storedJson), withoutMeta(m.resource))) unchanged.push(keyOf(m));
    else toWrite.push({ m, stored });
  }

  const invalid = validateMapped(toWrite.map((w) => w.m));
  if (invalid.length) throw new ApplyError(invalid);
  const written = await writeVersions(fhir, ctx, tx, toWrite);
  const applied = { written, unchanged, older };
  const keys = [...toWrite.map((w) => keyOf(w.m)), ...unchanged];
  const clocks = ctx.messageTime && keys.length
    ? { types: keys.map((k) => k.split('/')[0]), ids: keys.map((k) => k.split('/')[1]), time: ctx.messageTime, messageId: ctx.messageId }
    : undefined;
  if (ctx.finish) await ctx.finish(tx, applied, clocks);
  else if (clocks) await tx.query(`WITH ${clocksCte(1)} SELECT 1`, [clocks.types, clocks.ids, clocks.time, clocks.messageId]);
  return applied;
}

/**
 * Writes the validated resources as FHIR updates (ownership, scopes, AuditEvents, index and outbox rows)
 * in the open transaction, with the rows already locked: each is validated once, here, before the store.
 */
async function writeVersions(
  fhir: FhirService, ctx: ApplyContext, tx: Queryable, toWrite: readonly { m: MappedResource; stored: StoredResource | null }[],
): Promise<string[]> {
  const writes: PreparedWrite[] = [];
  const written: string[] = [];
  for (const { m, stored } of toWrite) {
    try {
      checkScope(ctx.auth, m.resourceType, 'update');
      const planned = await fhir.planUpdate(ctx.caller, m.resource as unknown as Resource, undefined, tx, stored);
      if (planned.write) writes.push(planned.write);
      if (planned.result.location) written.push(planned.result.location);
    } catch (err) {
      throw err instanceof FhirError ? fromFhirError(err, m) : err;
    }
  }
  if (writes.length) await fhir.commitWrites(writes, tx);
  return written;
}

interface Target {
  stored?: StoredResource;
  /** A newer message has written this resource since. */
  newer: boolean;
}

/**
 * Locks what the message writes, in one order for every writer (advisory locks on `Type/id`, so a
 * resource not yet stored is covered too), then reads each current row (locked until commit) and whether
 * a newer message than this one wrote it.
 */
async function lockTargets(tx: Queryable, mapped: readonly MappedResource[], time: Date | undefined): Promise<Map<string, Target>> {
  const targets = new Map<string, Target>();
  if (!mapped.length) return targets;
  const keys = [...new Set(mapped.map(keyOf))].sort();
  await lockKeys(tx, keys.map((k) => `ingest:${k}`));
  const { rows } = await tx.query<StoredRow & { key_type: string; key_id: string; newer: boolean | null; found: boolean }>(`WITH t AS (SELECT * FROM unnest($1::text[], $2::text[]) AS t(resource_type, id)),
     locked AS (SELECT ${STORED_COLUMNS} FROM resource WHERE (resource_type, id) IN (SELECT resource_type, id FROM t) FOR UPDATE)
     SELECT t.resource_type AS key_type, t.id AS key_id, c.message_time > $3 AS newer, locked.resource_type IS NOT NULL AS found, locked.*
     FROM t LEFT JOIN locked USING (resource_type, id)
     LEFT JOIN ingest_resource_clock c ON c.resource_type = t.resource_type AND c.resource_id = t.id`,
    [keys.map((k) => k.split('/')[0]), keys.map((k) => k.split('/')[1]), time ?? null]);
  for (const row of rows) {
    targets.set(`${row.key_type}/${row.key_id}`, { newer: row.newer === true, ...(row.found ? { stored: toStored(row) } : {}) });
  }
  return targets;
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

/** A refusal by the FHIR layer (ownership, scope, rule), located at the source of the resource it concerns. */
function fromFhirError(err: FhirError, m: MappedResource): ApplyError {
  const issues = err.issues.map((i) => ({ kind: 'invalid' as const, location: m.origin, reason: i.diagnostics }));
  return new ApplyError(issues, err.status >= 500 ? 422 : err.status);
}
