import fhirpath from 'fhirpath';
import r4model from 'fhirpath/fhir-context/r4/index.js';
import type { Change } from '../exchange/deliveries.js';
import type { Queryable } from '../store/db.js';
import { matchCondition } from '../store/search/execute.js';
import type { Criterion, SearchRequest } from '../store/search/request.js';
import { SqlParams } from '../store/sql.js';
import { parseCriteria, type SubscriptionSpec } from './spec.js';
import { liveSubscriptions, type SpecCache } from './state.js';
import type { TopicDefinition } from './topics.js';

/** How a subscription decides about one change. */
type Test =
  | { kind: 'search'; criteria: Criterion[]; fhirPath?: string }
  /** A deletion notifies the subscriptions that were told about the resource before (its index rows are gone). */
  | { kind: 'previously-notified' };

export interface Subscriber {
  id: string;
  owner: string | null;
  /** Purpose of use its view is decided for. */
  purpose: string;
}

/**
 * The subscriptions a change notifies. Criteria (R4 `Type?params`, or a topic's trigger plus the
 * subscriber's filters) run as a search restricted to the changed resource, compiled by the same code
 * as a search on /fhir and seen as the subscriber's Organization sees it (ownership and Consent, for
 * the Subscription's purpose of use), so a subscriber is never told about a change it may not read. Criteria are evaluated on the resource as it
 * is when the change is matched (normally the new version itself).
 */
export async function subscribersOf(db: Queryable, specs: SpecCache, change: Change): Promise<Subscriber[]> {
  // A deletion is told to whoever was told of the resource before, whoever may see it now.
  const live = (await liveSubscriptions(db, change, change.action === 'delete')).filter((s) => s.owner !== null);
  if (!live.length) return [];
  const parsed = await specs.get(db, live);
  const searches: { sub: Subscriber; test: Extract<Test, { kind: 'search' }> }[] = [];
  const notifiedBefore: Subscriber[] = [];
  for (const sub of live) {
    const spec = parsed.get(sub.id);
    const test = spec && spec.status !== 'off' ? testFor(spec, change) : undefined;
    if (test?.kind === 'search') searches.push({ sub, test });
    else if (test?.kind === 'previously-notified') notifiedBefore.push(sub);
  }
  const [bySearch, byHistory] = await Promise.all([
    matchSearches(db, change, searches),
    previouslyNotified(db, change, notifiedBefore),
  ]);
  return [...bySearch, ...byHistory];
}

function testFor(spec: SubscriptionSpec, change: Change): Test | undefined {
  if (spec.kind === 'criteria') {
    if (spec.criteria?.resourceType !== change.resourceType) return undefined;
    return change.action === 'delete' ? { kind: 'previously-notified' } : { kind: 'search', criteria: spec.criteria.criteria };
  }
  const trigger = spec.topic?.triggers.find((t) => t.resourceType === change.resourceType && t.interactions.includes(change.action));
  if (!trigger) return undefined;
  const typed = spec.filters.filter((f) => f.resourceType);
  if (typed.length && !typed.some((f) => f.resourceType === change.resourceType)) return undefined;
  if (change.action === 'delete') return { kind: 'previously-notified' };
  const filters = spec.filters.flatMap((f) => f.byType[change.resourceType] ?? []);
  return { kind: 'search', criteria: [...triggerCriteria(spec.topic!, change.resourceType), ...filters], fhirPath: trigger.fhirPath };
}

const compiledTriggers = new Map<string, Criterion[]>();

function triggerCriteria(topic: TopicDefinition, resourceType: string): Criterion[] {
  const key = `${topic.url}|${resourceType}`;
  let criteria = compiledTriggers.get(key);
  if (!criteria) {
    const current = topic.triggers.find((t) => t.resourceType === resourceType)?.current;
    criteria = current ? parseCriteria(`${resourceType}?${current}`, 'SubscriptionTopic.resourceTrigger').criteria : [];
    compiledTriggers.set(key, criteria);
  }
  return criteria;
}

/** One statement for all: subscriptions with the same owner and criteria are evaluated once. */
async function matchSearches(db: Queryable, change: Change, searches: { sub: Subscriber; test: Extract<Test, { kind: 'search' }> }[]): Promise<Subscriber[]> {
  const survivors = await passFhirPath(db, change, searches);
  if (!survivors.length) return [];
  const groups = new Map<string, { owner: string; purpose: string; criteria: Criterion[]; subs: Subscriber[] }>();
  for (const { sub, test } of survivors) {
    const key = `${sub.owner}\n${sub.purpose}\n${JSON.stringify(test.criteria.map((c) => [c.code, c.modifier, c.values, c.chain?.criterion.code, c.chain?.criterion.values]))}`;
    const group = groups.get(key) ?? { owner: sub.owner!, purpose: sub.purpose, criteria: test.criteria, subs: [] };
    group.subs.push(sub);
    groups.set(key, group);
  }
  const list = [...groups.values()];
  const params = new SqlParams();
  const id = params.add(change.id);
  const parts = list.map((g, i) => {
    const request: SearchRequest = {
      resourceType: change.resourceType, criteria: g.criteria, sort: [], count: 1, offset: 0, total: 'none',
      include: [], revinclude: [], ignored: [],
    };
    const condition = matchCondition(request, { admin: false, organizationId: g.owner, purposeOfUse: g.purpose }, params);
    return `SELECT ${i} AS g WHERE EXISTS (SELECT 1 FROM resource r WHERE r.id = ${id} AND ${condition})`;
  });
  const { rows } = await db.query<{ g: number }>(parts.join('\nUNION ALL\n'), params.values);
  return rows.flatMap((r) => list[r.g].subs);
}

/** Topic triggers stated in FHIRPath are evaluated on the changed version itself. */
async function passFhirPath<T extends { test: { fhirPath?: string } }>(db: Queryable, change: Change, searches: T[]): Promise<T[]> {
  if (!searches.some((s) => s.test.fhirPath)) return searches;
  const { rows } = await db.query<{ json: string | null }>(
    'SELECT content::text AS json FROM resource_version WHERE resource_type = $1 AND id = $2 AND version_id = $3',
    [change.resourceType, change.id, change.versionId],
  );
  const resource = rows[0]?.json ? JSON.parse(rows[0].json) : undefined;
  return searches.filter((s) => {
    if (!s.test.fhirPath) return true;
    if (!resource) return false;
    const result = fhirpath.evaluate(resource, s.test.fhirPath, { current: resource }, r4model) as unknown[];
    return result.length === 1 && result[0] === true;
  });
}

async function previouslyNotified(db: Queryable, change: Change, subs: Subscriber[]): Promise<Subscriber[]> {
  if (!subs.length) return [];
  const { rows } = await db.query<{ subscription_id: string }>(
    `SELECT DISTINCT subscription_id FROM delivery WHERE kind = 'event' AND resource_type = $1 AND resource_id = $2
       AND subscription_id = ANY($3::text[]) AND version_id < $4`,
    [change.resourceType, change.id, subs.map((s) => s.id), change.versionId],
  );
  const told = new Set(rows.map((r) => r.subscription_id));
  return subs.filter((s) => told.has(s.id));
}
