import type { Database, Queryable } from '../store/db.js';
import { visibilitySql } from '../store/access.js';
import { SqlParams } from '../store/sql.js';
import { appendAudit, type AuditRow } from '../store/write-batch.js';
import { lockKeys } from '../store/locks.js';

/** A committed change, as the relay reads it from the outbox (the `changes` job's data). */
export interface Change {
  seq: number;
  resourceType: string;
  id: string;
  versionId: number;
  action: 'create' | 'update' | 'delete';
  owner: string | null;
  patientId: string | null;
  /** When the change committed (ms since epoch). */
  committedAt: number;
}

/** Notifications about one patient (or one resource outside any compartment) keep their order. */
export const orderKeyOf = (c: { patientId: string | null; resourceType: string; id: string }) => c.patientId ?? `${c.resourceType}/${c.id}`;

/** A delivery to queue, as the store returns it. */
export interface DeliveryJobRef {
  id: number;
  generation: number;
  subscriber: string | null;
  /** The subscription's purpose of use when queued (the worker checks it is still the subscription's). */
  purpose?: string;
  /** The change an event notifies (none for a handshake or heartbeat). */
  changeSeq?: number | null;
}

/** A change's deliveries travel together in jobs of at most this many. */
export const DELIVERY_BATCH = 100;

/** The job of one delivery: `delivery-<id>-<generation>`; each new job for the row takes a new generation. */
export const deliveryJobId = (ref: { id: number; generation: number }) => `delivery-${ref.id}-${ref.generation}`;

/**
 * Batch jobs carry deliveries of one change. Those its matching queued (generation 0) go one job per
 * block of DELIVERY_BATCH row ids, `deliveries-<change>-<block>`, named from any one of its rows, so a
 * re-add is a no-op. Those woken together by their predecessors' settlement go one job per
 * DELIVERY_BATCH of them, `deliveries-<change>-<first id>-g<generation>`: a row takes each generation
 * once, so the name is new. A delivery that leaves its batch to be retried takes a job of its own.
 */
export const batchJobId = (changeSeq: number, id: number) => `deliveries-${changeSeq}-${Math.floor(id / DELIVERY_BATCH)}`;
export const wokenBatchJobId = (changeSeq: number, firstId: number, generation: number) => `deliveries-${changeSeq}-${firstId}-g${generation}`;

const hasChange = (ref: DeliveryJobRef): ref is DeliveryJobRef & { changeSeq: number } => ref.changeSeq !== undefined && ref.changeSeq !== null;

/**
 * The batch job that may carry a delivery (none for a handshake, heartbeat or re-queue). A batch of woken
 * deliveries is named after its first member only: for the others this names no job, and the reconciler
 * queues them again on their own if that batch waits longer than its interval (their new generation
 * makes the batch pass them over).
 */
export function batchJobOf(ref: DeliveryJobRef): string | undefined {
  if (!hasChange(ref)) return undefined;
  const seq = Number(ref.changeSeq);
  return ref.generation === 0 ? batchJobId(seq, Number(ref.id)) : wokenBatchJobId(seq, Number(ref.id), ref.generation);
}

/** Groups the deliveries that have a change into batch jobs; the others (handshakes, heartbeats, replays, re-queues) are `alone`. */
export function batchesOf(refs: DeliveryJobRef[]): { batches: Map<string, DeliveryJobRef[]>; alone: DeliveryJobRef[] } {
  const batches = new Map<string, DeliveryJobRef[]>();
  const woken = new Map<string, DeliveryJobRef[]>();
  const alone: DeliveryJobRef[] = [];
  const add = (into: Map<string, DeliveryJobRef[]>, key: string, ref: DeliveryJobRef) => {
    const members = into.get(key) ?? [];
    into.set(key, members);
    members.push(ref);
  };
  for (const ref of refs) {
    if (!hasChange(ref)) alone.push(ref);
    else if (ref.generation === 0) add(batches, batchJobId(ref.changeSeq, ref.id), ref);
    else add(woken, `${ref.changeSeq}/${ref.generation}`, ref);
  }
  for (const members of woken.values()) {
    members.sort((a, b) => a.id - b.id);
    for (let i = 0; i < members.length; i += DELIVERY_BATCH) {
      const chunk = members.slice(i, i + DELIVERY_BATCH);
      batches.set(wokenBatchJobId(chunk[0].changeSeq!, chunk[0].id, chunk[0].generation), chunk);
    }
  }
  return { batches, alone };
}

/**
 * Matching, parking and settling of one order key take its lock (one per patient, shared by the
 * subscriptions' streams of that patient), so a delivery is never parked behind one that has just
 * settled, nor queued behind one that is being matched.
 */
const lockStreams = (tx: Queryable, keys: (string | null)[]) =>
  lockKeys(tx, keys.filter((k): k is string => k !== null).map((k) => `stream:${k}`));

/**
 * Records the subscriptions a change notifies: one event row each (a second run adds nothing), numbered
 * per subscription, queued only when no earlier notification of the same stream is pending; marks the
 * change matched. Returns every queued, pending delivery of the change (including a previous run's).
 * One statement after the stream's and the subscriptions' locks, all sent with BEGIN and COMMIT at once,
 * so the subscriptions' counters are locked only while the server runs them, and a commit that does not
 * wait for the disk: every match of a change notifying a subscription waits for that counter. A match a
 * server crash loses is redone (the change is unmatched again; the reconciler queues it) with the same
 * idempotency keys, and a settlement's durable commit flushes it first. Two runs of one change are
 * serialised by the stream lock, and the statement's snapshot is taken once the locks are held, so
 * `fresh` already leaves out what an earlier run inserted: a plain insert (delivery_event_once would
 * refuse a second row, failing the job, not adding one). The version's existing rows are read once, by
 * that index alone: asked for pending rows, the planner read the whole pending-only index instead, which
 * it believes small (migration 008), on every match. Subscriptions are locked (lockSubscriptions) and
 * counted by their keys, whatever the planner knows of their table.
 */
export async function recordMatches(db: Database, change: Change, subscribers: { id: string; owner: string | null; purpose: string }[]): Promise<DeliveryJobRef[]> {
  if (!subscribers.length) {
    await db.query('UPDATE outbox SET matched_at = now() WHERE seq = $1 AND matched_at IS NULL', [change.seq]);
    return [];
  }
  const orderKey = orderKeyOf(change);
  return db.transaction(async (tx) => {
    const locked = lockStreams(tx, [orderKey]);
    // The embedded store runs one transaction at a time: there the lock waits for nothing, and planning it
    // took 0.3 ms of the one session per change.
    const counters = db.embedded ? undefined : lockSubscriptions(tx, subscribers.map((s) => s.id));
    const matched = tx.query<DeliveryJobRef>(`WITH x AS (SELECT * FROM json_to_recordset($1::json) AS x(sub text, subscriber text, purpose text)),
       existing AS (SELECT d.id, d.subscription_id, d.generation, d.subscriber, d.status, d.queued FROM delivery d
         WHERE d.kind = 'event' AND d.resource_type = $3 AND d.resource_id = $4 AND d.version_id = $5),
       fresh AS (SELECT x.sub, x.subscriber FROM x WHERE x.sub NOT IN (SELECT subscription_id FROM existing)),
       numbered AS (UPDATE subscription_state s SET events = s.events + 1 WHERE s.id = ANY(ARRAY(SELECT sub FROM fresh)) RETURNING s.id, s.events),
       ins AS (INSERT INTO delivery (subscription_id, subscriber, kind, change_seq, resource_type, resource_id, version_id, action,
           data_owner, patient_id, order_key, changed_at, event_number, queued)
         SELECT f.sub, f.subscriber, 'event', $2, $3, $4, $5, $6, $7, $8, $9, to_timestamp($10::double precision / 1000), n.events,
           NOT EXISTS (SELECT 1 FROM delivery p WHERE p.subscription_id = f.sub AND p.order_key = $9 AND p.status = 'pending'
             AND p.change_seq < $2)
         FROM fresh f JOIN numbered n ON n.id = f.sub
         RETURNING id, generation, subscriber, subscription_id, queued),
       matched AS (UPDATE outbox SET matched_at = now() WHERE seq = $2 AND matched_at IS NULL)
       SELECT i.id, i.generation, i.subscriber, x.purpose, $2::bigint AS "changeSeq" FROM ins i JOIN x ON x.sub = i.subscription_id WHERE i.queued
       UNION ALL
       SELECT e.id, e.generation, e.subscriber, x.purpose, $2 FROM existing e JOIN x ON x.sub = e.subscription_id
       WHERE e.status = 'pending' AND e.queued`,
      [JSON.stringify(subscribers.map((s) => ({ sub: s.id, subscriber: s.owner, purpose: s.purpose }))), change.seq, change.resourceType, change.id,
        change.versionId, change.action, change.owner, change.patientId, orderKey, change.committedAt]);
    const [, , { rows }] = await Promise.all([locked, counters, matched]);
    return rows.map((r) => ({ ...r, id: Number(r.id), changeSeq: Number(r.changeSeq) }));
  }, { redoable: true, atOnce: true });
}

/**
 * Locks subscriptions' rows (their event counters) in key order, in a statement of their own: the
 * statement behind it takes its snapshot once they are held, so it sees the counters as the previous
 * holder committed them. Locked inside that statement, every row a concurrent match had just counted was
 * re-checked against its newest version twice (locking, counting), each time re-running the statement's
 * scan of the keys: a fifth of the store's time in a fan-out. One key's look-up at a time (the lateral
 * join) keeps a re-check to that key.
 */
const lockSubscriptions = (tx: Queryable, ids: string[]) => tx.query(
  `SELECT 1 FROM (SELECT unnest($1::text[]) AS id ORDER BY 1) k
   CROSS JOIN LATERAL (SELECT 1 FROM subscription_state s WHERE s.id = k.id FOR UPDATE) l`, [ids]);

/** A handshake or heartbeat for one subscription (its job carries the subscription's purpose of use). */
export async function createControlDelivery(db: Queryable, subscriptionId: string, subscriber: string | null, kind: 'handshake' | 'heartbeat'): Promise<DeliveryJobRef> {
  const { rows } = await db.query<DeliveryJobRef>(
    `INSERT INTO delivery (subscription_id, subscriber, kind) VALUES ($1, $2, $3)
     RETURNING id, generation, subscriber, (SELECT purpose FROM subscription_state WHERE id = $1) AS purpose`,
    [subscriptionId, subscriber, kind],
  );
  return rows[0];
}

/** Everything a delivery attempt needs, read in one statement. */
export interface DeliveryRow {
  id: number;
  subscription_id: string;
  subscriber: string | null;
  kind: 'event' | 'handshake' | 'heartbeat';
  change_seq: number | null;
  resource_type: string | null;
  resource_id: string | null;
  version_id: number | null;
  action: 'create' | 'update' | 'delete' | null;
  patient_id: string | null;
  data_owner: string | null;
  order_key: string | null;
  event_number: number | null;
  status: string;
  /** Which job owns the row now (0: its change's batch; see batchJobId). */
  generation: number;
  attempts: number;
  created_at: Date;
  changed_at: Date | null;
  subscription_status: string | null;
  /** Why the subscription is in error (its last failure). */
  subscription_error: string | null;
  /** The subscription's purpose of use now: what `visible` was decided for when it equals the one asked. */
  purpose: string | null;
  events: number | null;
  subscription_version: number | null;
  /** An earlier change about the same patient is not matched yet: it may notify this subscription first. */
  waits_for_change: boolean;
  /** An earlier notification of the same stream is still pending. */
  waits_for_earlier: boolean;
  /** The resource version as the subscriber may see it now (Consent checked at send time); null if hidden. */
  resource_json: string | null;
  visible: boolean;
}

/**
 * Reads deliveries of one subscriber in one statement: its Organization's view, for the purpose of use
 * given, decides what is visible. A fan-out reads one version for many subscriptions: the version is
 * looked up, checked and turned into text once (`seen`), and its text travels in the first row only
 * (the others take it from there); the earlier-unmatched-change test is made once per change
 * (`unmatched`), written as index outbox_unmatched_stream's expression (the order key), so it is one
 * probe however long the backlog.
 */
export async function loadDeliveries(db: Queryable, ids: number[], subscriber: string | null, purpose: string): Promise<DeliveryRow[]> {
  const params = new SqlParams();
  const idParam = params.add(ids);
  const viewer = { admin: false, organizationId: subscriber ?? undefined, purposeOfUse: purpose };
  const sql = `WITH d AS MATERIALIZED (SELECT * FROM delivery WHERE id = ANY(${idParam}::bigint[])),
      seen AS MATERIALIZED (SELECT x.resource_type, x.resource_id, x.version_id, v.id IS NOT NULL AS visible, v.content::text AS json
        FROM (SELECT DISTINCT resource_type, resource_id, version_id FROM d WHERE kind = 'event') x
        LEFT JOIN resource_version v ON v.resource_type = x.resource_type AND v.id = x.resource_id AND v.version_id = x.version_id
          AND ${visibilitySql(viewer, 'v', params)}),
      unmatched AS MATERIALIZED (SELECT c.order_key, c.change_seq, EXISTS (SELECT 1 FROM outbox o WHERE o.matched_at IS NULL
          AND o.seq < c.change_seq AND COALESCE(o.patient_id, o.resource_type || '/' || o.id) = c.order_key) AS waits
        FROM (SELECT DISTINCT order_key, change_seq FROM d WHERE kind = 'event') c)
    SELECT d.id, d.subscription_id, d.subscriber, d.kind, d.change_seq, d.resource_type, d.resource_id, d.version_id,
      d.action, d.patient_id, d.data_owner, d.order_key, d.event_number, d.status, d.generation, d.attempts, d.created_at, d.changed_at,
      s.status AS subscription_status, s.last_error AS subscription_error, s.purpose, s.events, sub.version_id AS subscription_version,
      COALESCE(u.waits, false) AS waits_for_change,
      (d.kind = 'event' AND EXISTS (SELECT 1 FROM delivery p WHERE p.subscription_id = d.subscription_id
        AND p.order_key = d.order_key AND p.status = 'pending' AND p.change_seq < d.change_seq)) AS waits_for_earlier,
      CASE WHEN row_number() OVER (PARTITION BY d.resource_type, d.resource_id, d.version_id ORDER BY d.id) = 1 THEN v.json END AS resource_json,
      COALESCE(v.visible, false) AS visible
    FROM d
    LEFT JOIN subscription_state s ON s.id = d.subscription_id
    LEFT JOIN resource sub ON sub.resource_type = 'Subscription' AND sub.id = d.subscription_id AND NOT sub.deleted
    LEFT JOIN seen v ON d.kind = 'event' AND v.resource_type = d.resource_type AND v.resource_id = d.resource_id AND v.version_id = d.version_id
    LEFT JOIN unmatched u ON d.kind = 'event' AND u.order_key = d.order_key AND u.change_seq = d.change_seq`;
  const { rows } = await db.query<DeliveryRow>(sql, params.values);
  const versionOf = (r: DeliveryRow) => `${r.resource_type}/${r.resource_id}/${r.version_id}`;
  const texts = new Map(rows.filter((r) => r.resource_json !== null).map((r) => [versionOf(r), r.resource_json]));
  return rows.map((r) => ({ ...r, id: Number(r.id), resource_json: r.resource_json ?? texts.get(versionOf(r)) ?? null }));
}

/**
 * Takes a queued delivery off the queue because an earlier one of its stream is still pending; that
 * one queues it when it settles. False when nothing earlier is pending (the delivery may go now).
 */
export async function parkBehindEarlier(db: Database, row: Pick<DeliveryRow, 'id' | 'subscription_id' | 'order_key'>): Promise<boolean> {
  return db.transaction(async (tx) => {
    const locked = lockStreams(tx, [row.order_key]);
    const parked = tx.query(`UPDATE delivery d SET queued = false, updated_at = now() WHERE d.id = $1 AND d.status = 'pending'
         AND EXISTS (SELECT 1 FROM delivery p WHERE p.subscription_id = d.subscription_id AND p.order_key = d.order_key
           AND p.status = 'pending' AND p.change_seq < d.change_seq)`,
      [row.id]);
    const [, { rowCount }] = await Promise.all([locked, parked]);
    return (rowCount ?? 0) > 0;
  }, { atOnce: true });
}

/**
 * One failed attempt, kept with its error. Returns the generation of the job that tries again: a new one
 * when the delivery leaves its batch (`ownJob`), undefined if the delivery is no longer pending.
 */
export async function recordAttempt(db: Queryable, id: number, error: string, httpStatus: number | null, ownJob = false): Promise<number | undefined> {
  const { rows } = await db.query<{ generation: number }>(
    `UPDATE delivery SET attempts = attempts + 1, last_error = $2, last_http_status = $3, generation = generation + $4, updated_at = now()
     WHERE id = $1 AND status = 'pending' RETURNING generation`,
    [id, error.slice(0, 1000), httpStatus, ownJob ? 1 : 0],
  );
  return rows[0]?.generation;
}

export type FinalStatus = 'delivered' | 'dead' | 'withheld' | 'cancelled';

export interface Settlement {
  id: number;
  subscriptionId: string;
  kind: DeliveryRow['kind'];
  orderKey: string | null;
  status: FinalStatus;
  /** Attempts to add (1 for an attempt that ends it, 0 for a decision without sending). */
  tried: number;
  httpStatus?: number | null;
  error?: string;
  /** The disclosure's AuditEvent, stored with the settlement. */
  audit?: AuditRow;
}

export interface SettleResult {
  /** Deliveries that were waiting behind a settled one and are now queued. */
  woken: DeliveryJobRef[];
  /** Subscriptions a successful delivery turned (back) to active. */
  activated: string[];
}

/**
 * Settles deliveries in one transaction sent at once (the streams' locks are held only while the server
 * runs it): final status, next in each stream queued, and an AuditEvent for every notification sent (a
 * notification sent twice, when a delivery's second attempt raced its first, was disclosed twice). A
 * delivered notification also postpones its subscription's next heartbeat and ends its run of failures;
 * a delivered handshake makes a requested subscription active, and any delivered notification (a
 * heartbeat too) turns a subscription in error back to active.
 */
export async function settle(db: Database, batch: Settlement[]): Promise<SettleResult> {
  return db.transaction(async (tx) => {
    const locked = lockStreams(tx, batch.filter((s) => s.kind === 'event').map((s) => s.orderKey));
    // The ids go again as an array, for the key index. The status a row is settled from ('pending') comes
    // with each row (x.was): stated as a constant, it let the planner take the pending-only index, which
    // it believes small (see migration 008), and read it end to end for a few rows (4,800 buffers for one).
    const settled = tx.query<{ what: 'settled' | 'woken' | 'activated'; id: string; generation: number | null; subscriber: string | null; purpose: string | null; change_seq: number | null }>(`WITH x AS (SELECT * FROM json_to_recordset($1::json) AS x(id bigint, status text, tried int, http int, err text, was text)),
       upd AS (UPDATE delivery d SET status = x.status, attempts = d.attempts + x.tried,
           last_http_status = COALESCE(x.http, d.last_http_status), last_error = COALESCE(x.err, d.last_error),
           delivered_at = CASE WHEN x.status = 'delivered' THEN now() END, updated_at = now()
         FROM x WHERE d.id = ANY($2::bigint[]) AND d.id = x.id AND d.status = x.was
         RETURNING d.id, d.subscription_id, d.order_key, d.kind, d.status),
       next AS (UPDATE delivery n SET queued = true, generation = n.generation + 1, updated_at = now()
         WHERE n.id IN (
           SELECT first.id FROM (SELECT DISTINCT subscription_id, order_key FROM upd WHERE kind = 'event') s
           CROSS JOIN LATERAL (SELECT p.id FROM delivery p WHERE p.subscription_id = s.subscription_id AND p.order_key = s.order_key
             AND p.status = 'pending' AND p.id NOT IN (SELECT id FROM upd) ORDER BY p.change_seq LIMIT 1) first)
         AND NOT n.queued RETURNING n.id, n.generation, n.subscriber, n.change_seq,
           (SELECT st.purpose FROM subscription_state st WHERE st.id = n.subscription_id) AS purpose),
       touched AS (SELECT s.id, (s.status = 'error' OR (s.status = 'requested' AND EXISTS (SELECT 1 FROM upd u
             WHERE u.subscription_id = s.id AND u.kind = 'handshake' AND u.status = 'delivered'))) AS activate
         FROM subscription_state s WHERE s.id IN (SELECT subscription_id FROM upd WHERE status = 'delivered')
           AND (s.status IN ('error', 'requested') OR s.heartbeat_seconds IS NOT NULL OR s.failures > 0) ORDER BY s.id FOR UPDATE),
       touch AS (UPDATE subscription_state s SET
           status = CASE WHEN t.activate THEN 'active' ELSE s.status END,
           last_error = CASE WHEN t.activate OR s.status = 'active' THEN NULL ELSE s.last_error END, failures = 0,
           next_heartbeat_at = CASE WHEN s.heartbeat_seconds IS NOT NULL THEN now() + s.heartbeat_seconds * interval '1 second' END,
           updated_at = now()
         FROM touched t WHERE s.id = t.id RETURNING s.id, t.activate)
       SELECT 'settled' AS what, id::text AS id, NULL::int AS generation, NULL::text AS subscriber, NULL::text AS purpose, NULL::bigint AS change_seq FROM upd
       UNION ALL SELECT 'woken', id::text, generation, subscriber, purpose, change_seq FROM next
       UNION ALL SELECT 'activated', id, NULL, NULL, NULL, NULL FROM touch WHERE activate`,
      [JSON.stringify(batch.map((s) => ({ id: s.id, status: s.status, tried: s.tried, http: s.httpStatus ?? null, err: s.error?.slice(0, 1000) ?? null, was: 'pending' }))),
        batch.map((s) => s.id)]);
    const audit = batch.flatMap((s) => (s.audit ? [s.audit] : []));
    const audited = audit.length ? appendAudit(tx, audit) : undefined;
    const [, { rows }] = await Promise.all([locked, settled, audited]);
    return {
      woken: rows.filter((r) => r.what === 'woken')
        .map((r) => ({ id: Number(r.id), generation: r.generation!, subscriber: r.subscriber, purpose: r.purpose ?? undefined, changeSeq: r.change_seq })),
      activated: rows.filter((r) => r.what === 'activated').map((r) => r.id),
    };
  }, { atOnce: true });
}
