import type { MappedResource } from '../mapping/engine.js';
import { sameValue } from '../mapping/merge.js';
import type { Queryable } from '../store/db.js';
import { lockKeys } from '../store/locks.js';

/**
 * Versions of one 居宅サービス計画: the sender's CarePlans (category kyotaku) about one subject. Each
 * 居宅サービス計画作成(変更)日 is its own CarePlan; only the newest is current. When a file brings plan
 * versions, every other version of the same subject and sender becomes `revoked` (FHIR R4: terminated
 * before completion, possibly replaced by a new plan), each version `replaces` the one before it, and what
 * a version no longer contains stops being current without being deleted: its 課題 (Condition) become
 * clinicalStatus `inactive`, its Goals lifecycleStatus `completed` (no longer sought; whether they were
 * achieved is not known), its open activities `stopped`. An older version arriving after a newer one is
 * stored as revoked and changes nothing of the newer one.
 */

type Json = Record<string, any>;

const KIND_SYSTEM = 'http://renkei.jp/fhir/CodeSystem/careplan-kind';
const CLINICAL_SYSTEM = 'http://terminology.hl7.org/CodeSystem/condition-clinical';
const OPEN_ACTIVITY = ['not-started', 'scheduled', 'in-progress', 'on-hold'];
const OPEN_GOAL = ['proposed', 'planned', 'accepted', 'active', 'on-hold'];
const OPEN_CONDITION = ['active', 'recurrence', 'relapse'];

interface Version {
  id: string;
  /** 居宅サービス計画作成(変更)日 (period.start). */
  date: string;
  stored?: Json;
  incoming?: MappedResource;
  /** Some rows of this version were refused (partial acceptance): what they held is kept as it was. */
  partial?: boolean;
}

const isKyotaku = (plan: Json) =>
  (plan.category ?? []).some((c: Json) => (c.coding ?? []).some((k: Json) => k.system === KIND_SYSTEM && k.code === 'kyotaku'));

const keyOf = (m: { resourceType: string; id: string }) => `${m.resourceType}/${m.id}`;

/** The element as the plan will be stored: the file's when it carries it (merge), else the stored one. */
const effective = (v: Version, element: string): unknown => v.incoming?.resource[element] ?? v.stored?.[element];

const referencesIn = (...lists: unknown[]): string[] => lists
  .flatMap((list) => (Array.isArray(list) ? list : []) as Json[])
  .map((r) => r.reference)
  .filter((r): r is string => typeof r === 'string');

/** The Conditions and Goals the plan will refer to. */
const currentReferences = (v: Version) => new Set(referencesIn(effective(v, 'addresses'), effective(v, 'goal')));

/** Everything the plan refers to or referred to before this file. */
const allReferences = (v: Version) => new Set([...currentReferences(v), ...referencesIn(v.stored?.addresses, v.stored?.goal)]);

/** The sender's stored plan versions of each subject, read under the subjects' plan-scope locks. */
async function storedPlans(tx: Queryable, owner: string, patientIds: string[]): Promise<Map<string, Json[]>> {
  await lockKeys(tx, patientIds.map((patientId) => `careplan-scope:${owner}:${patientId}`));
  const { rows } = await tx.query<{ patient_id: string; content: Json }>(
    `SELECT patient_id, content FROM resource
     WHERE resource_type = 'CarePlan' AND owner = $1 AND patient_id = ANY($2::text[]) AND NOT deleted`,
    [owner, patientIds],
  );
  const byPatient = new Map(patientIds.map((patientId) => [patientId, [] as Json[]]));
  for (const row of rows) if (isKyotaku(row.content)) byPatient.get(row.patient_id)?.push(row.content);
  return byPatient;
}

/** The owner's stored resources among `references` (`Type/id`), by reference. */
async function storedResources(tx: Queryable, owner: string, references: string[]): Promise<Map<string, Json>> {
  if (!references.length) return new Map();
  const { rows } = await tx.query<{ content: Json }>(
    `SELECT r.content FROM resource r JOIN unnest($1::text[], $2::text[]) AS k(t, i) ON r.resource_type = k.t AND r.id = k.i
     WHERE r.owner = $3 AND NOT r.deleted`,
    [references.map((r) => r.split('/')[0]), references.map((r) => r.split('/')[1]), owner],
  );
  return new Map(rows.map((r) => [keyOf(r.content as { resourceType: string; id: string }), r.content]));
}

/** A stored resource to be written again: its claimed profiles and security labels kept, the rest of meta restamped. */
function asMapped(json: Json): MappedResource {
  const { meta, ...rest } = json;
  const kept = { ...(meta?.profile ? { profile: meta.profile } : {}), ...(meta?.security ? { security: meta.security } : {}) };
  const resource = { ...rest, ...(Object.keys(kept).length ? { meta: kept } : {}) };
  return { name: 'superseded', resourceType: json.resourceType, id: json.id, resource, merge: false, deletions: [], provenance: {}, sources: {}, origin: {} };
}

/** Condition → inactive, Goal → completed; false when it is not current already. */
function endCurrency(resource: Json, date: string): boolean {
  if (resource.resourceType === 'Condition') {
    const code = resource.clinicalStatus?.coding?.find((c: Json) => c.system === CLINICAL_SYSTEM)?.code;
    if (!OPEN_CONDITION.includes(code)) return false;
    resource.clinicalStatus = { coding: [{ system: CLINICAL_SYSTEM, code: 'inactive' }] };
    return true;
  }
  if (resource.resourceType === 'Goal') {
    if (!OPEN_GOAL.includes(resource.lifecycleStatus)) return false;
    resource.lifecycleStatus = 'completed';
    resource.statusDate = date;
    resource.statusReason = '居宅サービス計画の変更により対象外 / no longer part of the current care plan';
    return true;
  }
  return false;
}

const stopActivity = (a: Json): Json =>
  a.detail && OPEN_ACTIVITY.includes(a.detail.status) ? { ...a, detail: { ...a.detail, status: 'stopped' } } : a;

function withoutStatus(a: Json): Json {
  const { status: _status, ...detail } = (a.detail ?? {}) as Json;
  return { ...a, detail };
}

const sameActivity = (a: Json, b: Json) => sameValue(withoutStatus(a), withoutStatus(b));

/** The plan's activities: the file's, plus the stored ones it no longer sends (stopped, or as they were when rows were refused). */
function keepDroppedActivities(v: Version): void {
  const sent = v.incoming?.resource.activity as Json[] | undefined;
  const before = (v.stored?.activity ?? []) as Json[];
  if (!sent || !before.length) return;
  const dropped = before.filter((old) => !sent.some((a) => sameActivity(a, old)));
  if (dropped.length) v.incoming!.resource.activity = [...sent, ...(v.partial ? dropped : dropped.map(stopActivity))];
}

/** A version with refused rows keeps the 課題 and Goals it referred to: a refused row changes nothing. */
function keepReferences(v: Version): void {
  if (!v.partial || !v.incoming || !v.stored) return;
  for (const element of ['addresses', 'goal']) {
    const sent = v.incoming.resource[element] as Json[] | undefined;
    if (!sent) continue;
    const missing = ((v.stored[element] ?? []) as Json[]).filter((old) => !sent.some((r) => r.reference === old.reference));
    if (missing.length) v.incoming.resource[element] = [...sent, ...missing];
  }
}

function revoke(v: Version, extra: Map<string, MappedResource>): void {
  if (v.incoming) {
    v.incoming.resource.status = 'revoked';
    if (Array.isArray(v.incoming.resource.activity)) v.incoming.resource.activity = v.incoming.resource.activity.map(stopActivity);
    return;
  }
  if (!v.stored || v.stored.status === 'revoked') return;
  const plan = asMapped(v.stored);
  plan.resource.status = 'revoked';
  if (Array.isArray(plan.resource.activity)) plan.resource.activity = plan.resource.activity.map(stopActivity);
  extra.set(keyOf(plan), plan);
}

/**
 * Adjusts the file's plan versions (and returns the stored resources to write again) per subject.
 * `incomplete` holds the resources (`Type/id`) some refused row would have contributed to.
 */
export async function reconcilePlanVersions(
  tx: Queryable, owner: string, resources: MappedResource[], incomplete: ReadonlySet<string> = new Set(),
): Promise<MappedResource[]> {
  const subjectOf = (m: MappedResource) => (m.resource as Json).subject?.reference as string | undefined;
  const plans = resources.filter((m) => m.resourceType === 'CarePlan' && isKyotaku(m.resource) && /^Patient\/[^/]+$/.test(subjectOf(m) ?? ''));
  const subjects = [...new Set(plans.map((p) => subjectOf(p)!.slice('Patient/'.length)))].sort();
  if (!subjects.length) return [];
  const extra = new Map<string, MappedResource>();
  const stored = await storedPlans(tx, owner, subjects);
  const ended = new Map<string, string>();
  for (const patientId of subjects) {
    const incoming = plans.filter((p) => subjectOf(p) === `Patient/${patientId}`);
    reconcileScope(stored.get(patientId) ?? [], incoming, extra, incomplete, ended);
  }
  await endReferences(tx, owner, ended, resources, extra);
  return [...extra.values()];
}

/** Orders one subject's versions and revokes all but the newest; what the newest no longer holds goes to `ended`, with its date. */
function reconcileScope(
  stored: Json[], incoming: MappedResource[], extra: Map<string, MappedResource>, incomplete: ReadonlySet<string>,
  ended: Map<string, string>,
): void {
  const versions = new Map<string, Version>(stored.map((s) => [s.id as string, { id: s.id, date: s.period?.start ?? '', stored: s }]));
  for (const m of incoming) {
    const v = versions.get(m.id) ?? { id: m.id, date: '' };
    versions.set(m.id, { ...v, incoming: m, date: (m.resource as Json).period?.start ?? v.date, partial: incomplete.has(keyOf(m)) });
  }
  for (const v of versions.values()) keepReferences(v);
  const ordered = [...versions.values()].sort((a, b) => a.date.localeCompare(b.date) || a.id.localeCompare(b.id));
  const newest = ordered[ordered.length - 1];
  const current = currentReferences(newest);
  ordered.forEach((v, i) => {
    if (v.incoming) {
      if (i > 0) v.incoming.resource.replaces = [{ reference: `CarePlan/${ordered[i - 1].id}` }];
      keepDroppedActivities(v);
    }
    if (v !== newest) revoke(v, extra);
    const reviewed = v === newest || v.incoming || (v.stored && v.stored.status !== 'revoked');
    if (reviewed) for (const ref of allReferences(v)) if (!current.has(ref)) ended.set(ref, newest.date);
  });
}

/** Ends the currency of what no version holds any more: in the file as sent, else a stored copy to write again. */
async function endReferences(
  tx: Queryable, owner: string, ended: ReadonlyMap<string, string>, resources: MappedResource[], extra: Map<string, MappedResource>,
): Promise<void> {
  const inFile = new Map(resources.map((m) => [keyOf(m), m]));
  for (const [reference, date] of ended) {
    const sent = inFile.get(reference);
    if (sent) endCurrency(sent.resource, date);
  }
  const references = [...ended.keys()].sort();
  const stored = await storedResources(tx, owner, references.filter((r) => !inFile.has(r) && !extra.has(r)));
  for (const reference of references) {
    const json = stored.get(reference);
    if (!json) continue;
    const copy = asMapped(json);
    if (endCurrency(copy.resource, ended.get(reference)!)) extra.set(reference, copy);
  }
}
