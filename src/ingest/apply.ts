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
import { addClocks, advanceClocks, noClocks, type Clocks } from './clocks.js';

/**
 * Writing mapped resources, inside one transaction with the message's status: existing resources are
 * found by identifier, each target is locked, resources last written by a newer message are left alone
 * (an older message never rolls data back), HL7 update semantics are applied over the stored version,
 * the result is validated against the profiles (once) and committed as FHIR updates in that transaction
 * (with their index rows, AuditEvents and outbox rows). A resource that would not change is not written again.
 * Several messages may be applied in one transaction (applyTogether), each step one statement for all.
 */

type Json = Record<string, unknown>;

export interface ApplyContext {
  services: Services;
  caller: Caller;
  auth: AuthContext;
  messageId: number;
  /** The time the message describes; undefined when it has none (then it is applied without ordering). */
  messageTime?: Date;
  /** The message's type, recorded with its outcome. */
  messageType?: string;
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

export interface LookupResult {
  resolved: Map<string, string>;
  failures: { lookup: Lookup; issue: MappingIssue }[];
}

/** Finds the existing resources lookups name (the subject of a care plan or record) among the sender's own, in one statement. */
export async function resolveLookups(caller: Caller, lookups: readonly Lookup[], q: Queryable): Promise<LookupResult> {
  const resolved = new Map<string, string>();
  const failures: LookupResult['failures'] = [];
  const distinct = [...new Map(lookups.map((l) => [l.reference, l])).values()];
  if (!distinct.length) return { resolved, failures };
  const found = await ownResourcesByIdentifier(q, distinct.map((l) => ({
    type: l.resourceType, system: l.system, value: l.value, owner: caller.organizationId ?? null,
  })));
  distinct.forEach((lookup, n) => {
    if (found[n].length === 1) {
      resolved.set(lookup.reference, `${lookup.resourceType}/${found[n][0]}`);
      return;
    }
    const reason = found[n].length
      ? `${lookup.value}: more than one ${lookup.resourceType} carries this identifier / 複数の${lookup.resourceType}が該当します`
      : `${lookup.value}: no ${lookup.describe} / 該当する${lookup.resourceType}が登録されていません`;
    failures.push({ lookup, issue: { kind: 'required', location: lookup.location, reason } });
  });
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
  const [outcome] = await applyTogether(tx, [{ ctx, input }]);
  if ('applied' in outcome) return outcome.applied;
  throw 'refused' in outcome ? outcome.refused : new Error('a message applied alone overlapped itself');
}

/** One message's resources to apply, with its context. */
export interface ApplyJob {
  ctx: ApplyContext;
  input: readonly MappedResource[];
}

/**
 * What became of one message applied together with others: applied; refused on its own (the others go
 * on); or handed back because it writes what an earlier message of the same group writes (apply it after).
 */
export type JobOutcome = { applied: Applied } | { refused: ApplyError } | { overlaps: true };

/** A message of the group that is being applied, with what it writes. */
export interface Finished {
  ctx: ApplyContext;
  applied: Applied;
}

/**
 * Records the outcome of the applied messages in the same transaction, and the clocks of their resources,
 * in one statement (e.g. each message's status in the message store).
 */
export type FinishGroup = (tx: Queryable, finished: Finished[], clocks: Clocks) => Promise<unknown>;

interface Planned {
  applied: Applied;
  writes: PreparedWrite[];
}

/**
 * Applies the resources of several messages in the open transaction, each message as if alone: the
 * look-ups, locks, reads and writes of all of them go in shared statements. A message refused for its
 * content (ApplyError) is refused alone; a store error fails the transaction, and with it every message.
 */
export async function applyTogether(tx: Queryable, jobs: readonly ApplyJob[], finish: FinishGroup = (q, _f, c) => advanceClocks(q, c)): Promise<JobOutcome[]> {
  const { fhir } = boundTo(jobs[0].ctx.services, tx);
  const outcomes: (JobOutcome | undefined)[] = new Array(jobs.length);
  const mapped = jobs.map((j) => j.input.map((m) => ({ ...m, resource: structuredClone(m.resource) })));
  await adoptExistingIds(tx, jobs, mapped, outcomes);
  markOverlaps(mapped, outcomes);

  const live = jobs.flatMap((_, i) => (outcomes[i] ? [] : [i]));
  const targets = await lockTargets(tx, live.flatMap((i) => mapped[i]));
  const planned = new Map<number, Planned>();
  const clocks = noClocks();
  for (const i of live) {
    try {
      planned.set(i, await planJob(fhir, jobs[i].ctx, tx, mapped[i], targets, clocks));
    } catch (err) {
      if (!(err instanceof ApplyError)) throw err;
      outcomes[i] = { refused: err };
    }
  }
  // The writes and the outcomes go to the store together (one round trip); a failed write fails the
  // transaction, and every outcome with it.
  const writes = [...planned.values()].flatMap((p) => p.writes);
  await Promise.all([
    writes.length ? fhir.commitWrites(writes, tx) : undefined,
    finish(tx, [...planned].map(([i, p]) => ({ ctx: jobs[i].ctx, applied: p.applied })), clocks),
  ]);
  for (const [i, p] of planned) outcomes[i] = { applied: p.applied };
  return outcomes.map((o) => o ?? { overlaps: true });
}

/** A message that would write a resource an earlier message of the group writes is left for later. */
function markOverlaps(mapped: readonly MappedResource[][], outcomes: (JobOutcome | undefined)[]): void {
  const taken = new Set<string>();
  mapped.forEach((resources, i) => {
    if (outcomes[i]) return;
    const keys = resources.map(keyOf);
    if (keys.some((k) => taken.has(k))) outcomes[i] = { overlaps: true };
    else keys.forEach((k) => taken.add(k));
  });
}

/**
 * Decides, over the locked rows, what one message writes, leaves unchanged or leaves to a newer message;
 * the clocks of what it writes or confirms go into `clocks`.
 */
async function planJob(
  fhir: FhirService, ctx: ApplyContext, tx: Queryable, mapped: MappedResource[], targets: Map<string, Target>, clocks: Clocks,
): Promise<Planned> {
  const toWrite: { m: MappedResource; stored: StoredResource | null }[] = [];
  const unchanged: string[] = [];
  const older: string[] = [];
  for (const m of mapped) {
    const target = targets.get(keyOf(m));
    if (isNewer(target, ctx.messageTime)) {
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
  const { writes, written } = await planVersions(fhir, ctx, tx, toWrite);
  if (ctx.messageTime) addClocks(clocks, [...toWrite.map((w) => keyOf(w.m)), ...unchanged], ctx.messageTime, ctx.messageId);
  return { applied: { written, unchanged, older }, writes };
}

/** A newer message than this one (by message time) has written the target since. */
const isNewer = (target: Target | undefined, time: Date | undefined) =>
  !!(time && target?.writtenAt && target.writtenAt.getTime() > time.getTime());

/**
 * Plans the validated resources as FHIR updates (ownership, scopes, AuditEvents, index and outbox rows)
 * over the rows already locked: each is validated once, here, before the store.
 */
async function planVersions(
  fhir: FhirService, ctx: ApplyContext, tx: Queryable, toWrite: readonly { m: MappedResource; stored: StoredResource | null }[],
): Promise<{ writes: PreparedWrite[]; written: string[] }> {
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
  return { writes, written };
}

interface Target {
  stored?: StoredResource;
  /** The time of the message that last wrote or confirmed this resource. */
  writtenAt?: Date;
}

/**
 * Locks what the messages write, in one order for every writer (advisory locks on `Type/id`, so a
 * resource not yet stored is covered too), then reads each current row (locked until commit) and the
 * time of the message that last wrote it.
 */
async function lockTargets(tx: Queryable, mapped: readonly MappedResource[]): Promise<Map<string, Target>> {
  const targets = new Map<string, Target>();
  if (!mapped.length) return targets;
  const keys = [...new Set(mapped.map(keyOf))].sort();
  // The read is sent behind the locks without waiting: the server takes its snapshot after they are held.
  const locked = lockKeys(tx, keys.map((k) => `ingest:${k}`));
  const read = tx.query<StoredRow & { key_type: string; key_id: string; written_at: Date | null; found: boolean }>(`WITH t AS (SELECT * FROM unnest($1::text[], $2::text[]) AS t(resource_type, id)),
     locked AS (SELECT ${STORED_COLUMNS} FROM resource WHERE (resource_type, id) IN (SELECT resource_type, id FROM t) FOR UPDATE)
     SELECT t.resource_type AS key_type, t.id AS key_id, c.message_time AS written_at, locked.resource_type IS NOT NULL AS found, locked.*
     FROM t LEFT JOIN locked USING (resource_type, id)
     LEFT JOIN ingest_resource_clock c ON c.resource_type = t.resource_type AND c.resource_id = t.id`,
    [keys.map((k) => k.split('/')[0]), keys.map((k) => k.split('/')[1])]);
  const [, { rows }] = await Promise.all([locked, read]);
  for (const row of rows) {
    targets.set(`${row.key_type}/${row.key_id}`, {
      ...(row.written_at ? { writtenAt: new Date(row.written_at) } : {}),
      ...(row.found ? { stored: toStored(row) } : {}),
    });
  }
  return targets;
}

/**
 * A resource with an identity (the Patient of PID-3) updates the sender's existing one with that
 * identifier: the identities of every message are looked up in one statement. A message whose identity
 * more than one of its sender's resources carry is refused (`outcomes`).
 */
async function adoptExistingIds(tx: Queryable, jobs: readonly ApplyJob[], mapped: MappedResource[][], outcomes: (JobOutcome | undefined)[]): Promise<void> {
  const wanted = mapped.flatMap((resources, job) => resources.flatMap((m) => (m.identity ? [{ job, m }] : [])));
  if (!wanted.length) return;
  const found = await ownResourcesByIdentifier(tx, wanted.map(({ job, m }) => ({
    type: m.resourceType, system: m.identity!.system, value: m.identity!.value, owner: jobs[job].ctx.caller.organizationId ?? null,
  })));
  const renames = mapped.map(() => new Map<string, string>());
  wanted.forEach(({ job, m }, n) => {
    const ids = found[n];
    if (ids.length > 1) {
      outcomes[job] ??= { refused: new ApplyError([{
        kind: 'conflict', location: m.provenance.identifier ?? m.origin,
        reason: `more than one ${m.resourceType} carries identifier ${m.identity!.value} / 同じ識別子の${m.resourceType}が複数あります`,
      }], 409) };
    } else if (ids.length === 1 && ids[0] !== m.id) {
      renames[job].set(keyOf(m), `${m.resourceType}/${ids[0]}`);
      m.id = ids[0];
      m.resource.id = ids[0];
    }
  });
  renames.forEach((r, job) => rewriteReferences(mapped[job], r));
}

/**
 * The ids of the live resources of each owner that carry each identifier (system and value exactly, as
 * `identifier=system|value` searches), in the order asked.
 */
async function ownResourcesByIdentifier(
  q: Queryable, wanted: readonly { type: string; system: string; value: string; owner: string | null }[],
): Promise<string[][]> {
  const { rows } = await q.query<{ n: number; id: string }>(
    `SELECT DISTINCT x.n, r.id FROM json_to_recordset($1::json) AS x(n int, t text, s text, v text, own text)
     JOIN sp_token i ON i.resource_type = x.t AND i.param = 'identifier' AND i.value = x.v AND i.system = x.s
     JOIN resource r ON r.resource_type = i.resource_type AND r.id = i.id AND r.owner = x.own AND NOT r.deleted`,
    [JSON.stringify(wanted.map((w, n) => ({ n, t: w.type, s: w.system, v: w.value, own: w.owner })))]);
  const found = wanted.map((): string[] => []);
  for (const row of rows) found[row.n].push(row.id);
  return found;
}

/** A refusal by the FHIR layer (ownership, scope, rule), located at the source of the resource it concerns. */
function fromFhirError(err: FhirError, m: MappedResource): ApplyError {
  const issues = err.issues.map((i) => ({ kind: 'invalid' as const, location: m.origin, reason: i.diagnostics }));
  return new ApplyError(issues, err.status >= 500 ? 422 : err.status);
}
