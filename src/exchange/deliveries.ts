import type pg from 'pg';
import type { Database, Queryable } from '../store/db.js';
import { visibilitySql } from '../store/access.js';
import { SqlParams } from '../store/sql.js';
import { appendAudit, type AuditRow } from '../store/write-batch.js';

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

/** A delivery job to add: job id `delivery-<id>-<generation>`, so a re-add of the same generation is a no-op. */
export interface DeliveryJobRef {
  id: number;
  generation: number;
  subscriber: string | null;
}

export const deliveryJobId = (ref: { id: number; generation: number }) => `delivery-${ref.id}-${ref.generation}`;

// Any constant: the advisory-lock namespace of delivery streams.
const STREAM_LOCK = 7_160_504;

/**
 * Matching, parking and settling of one order key take its lock (one per patient, shared by the
 * subscriptions' streams of that patient), so a delivery is never parked behind one that has just
 * settled, nor queued behind one that is being matched. Locks are taken in key order.
 */
async function lockStreams(tx: Queryable, keys: (string | null)[]): Promise<void> {
  const distinct = [...new Set(keys.filter((k): k is string => k !== null))].sort();
  if (!distinct.length) return;
  await tx.query(
    'SELECT pg_advisory_xact_lock($1, hashtext(k)) FROM (SELECT k FROM unnest($2::text[]) AS k ORDER BY k) ordered',
    [STREAM_LOCK, distinct],
  );
}

/**
 * Records the subscriptions a change notifies: one event row each (a second run adds nothing), numbered
 * per subscription, queued only when no earlier notification of the same stream is pending; marks the
 * change matched. Returns every queued, pending delivery of the change (including a previous run's).
 */
export async function recordMatches(db: Database, change: Change, subscribers: { id: string; owner: string | null }[]): Promise<DeliveryJobRef[]> {
  const orderKey = orderKeyOf(change);
  await db.transaction(async (tx) => {
    if (subscribers.length) {
      await lockStreams(tx, [orderKey]);
      const { rows: inserted } = await tx.query<{ id: number; subscription_id: string }>(
        `INSERT INTO delivery (subscription_id, subscriber, kind, change_seq, resource_type, resource_id, version_id, action,
           data_owner, patient_id, order_key, changed_at)
         SELECT x.sub, x.subscriber, 'event', $2, $3, $4, $5, $6, $7, $8, $9, to_timestamp($10::double precision / 1000)
         FROM json_to_recordset($1::json) AS x(sub text, subscriber text)
         ON CONFLICT (subscription_id, resource_type, resource_id, version_id) WHERE kind = 'event' DO NOTHING
         RETURNING id, subscription_id`,
        [JSON.stringify(subscribers.map((s) => ({ sub: s.id, subscriber: s.owner }))), change.seq, change.resourceType, change.id,
          change.versionId, change.action, change.owner, change.patientId, orderKey, change.committedAt],
      );
      if (inserted.length) await numberAndQueue(tx, inserted);
    }
    await tx.query('UPDATE outbox SET matched_at = now() WHERE seq = $1 AND matched_at IS NULL', [change.seq]);
  });
  const { rows } = await db.query<DeliveryJobRef>(
    `SELECT id, generation, subscriber FROM delivery WHERE change_seq = $1 AND kind = 'event' AND status = 'pending' AND queued`,
    [change.seq],
  );
  return rows;
}

/** eventsSinceSubscriptionStart: each new event takes its subscription's next number. */
async function numberAndQueue(tx: pg.PoolClient, inserted: { id: number; subscription_id: string }[]): Promise<void> {
  const subs = inserted.map((r) => r.subscription_id);
  await tx.query('SELECT id FROM subscription_state WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE', [subs]);
  const { rows: numbers } = await tx.query<{ id: string; events: number }>(
    'UPDATE subscription_state SET events = events + 1 WHERE id = ANY($1::text[]) RETURNING id, events', [subs]);
  const numberOf = new Map(numbers.map((n) => [n.id, n.events]));
  await tx.query(
    `UPDATE delivery d SET event_number = x.n,
       queued = NOT EXISTS (SELECT 1 FROM delivery p WHERE p.subscription_id = d.subscription_id AND p.order_key = d.order_key
         AND p.status = 'pending' AND p.change_seq < d.change_seq)
     FROM json_to_recordset($1::json) AS x(id bigint, n bigint) WHERE d.id = x.id`,
    [JSON.stringify(inserted.map((r) => ({ id: r.id, n: numberOf.get(r.subscription_id) ?? null })))],
  );
}

/** A handshake or heartbeat for one subscription. */
export async function createControlDelivery(db: Queryable, subscriptionId: string, subscriber: string | null, kind: 'handshake' | 'heartbeat'): Promise<DeliveryJobRef> {
  const { rows } = await db.query<DeliveryJobRef>(
    `INSERT INTO delivery (subscription_id, subscriber, kind) VALUES ($1, $2, $3) RETURNING id, generation, subscriber`,
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
  attempts: number;
  created_at: Date;
  changed_at: Date | null;
  subscription_status: string | null;
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

export async function loadDelivery(db: Queryable, id: number, subscriber: string | null): Promise<DeliveryRow | undefined> {
  const params = new SqlParams();
  const idParam = params.add(id);
  const viewer = { admin: false, organizationId: subscriber ?? undefined };
  const sql = `SELECT d.id, d.subscription_id, d.subscriber, d.kind, d.change_seq, d.resource_type, d.resource_id, d.version_id,
      d.action, d.patient_id, d.data_owner, d.order_key, d.event_number, d.status, d.attempts, d.created_at, d.changed_at,
      s.status AS subscription_status, s.events, sub.version_id AS subscription_version,
      (d.kind = 'event' AND EXISTS (SELECT 1 FROM outbox o WHERE o.matched_at IS NULL AND o.seq < d.change_seq
        AND COALESCE(o.patient_id, o.resource_type || '/' || o.id) = d.order_key)) AS waits_for_change,
      (d.kind = 'event' AND EXISTS (SELECT 1 FROM delivery p WHERE p.subscription_id = d.subscription_id
        AND p.order_key = d.order_key AND p.status = 'pending' AND p.change_seq < d.change_seq)) AS waits_for_earlier,
      v.content::text AS resource_json, v.id IS NOT NULL AS visible
    FROM delivery d
    LEFT JOIN subscription_state s ON s.id = d.subscription_id
    LEFT JOIN resource sub ON sub.resource_type = 'Subscription' AND sub.id = d.subscription_id AND NOT sub.deleted
    LEFT JOIN resource_version v ON d.kind = 'event' AND v.resource_type = d.resource_type AND v.id = d.resource_id
      AND v.version_id = d.version_id AND ${visibilitySql(viewer, 'v', params)}
    WHERE d.id = ${idParam}`;
  const { rows } = await db.query<DeliveryRow>(sql, params.values);
  return rows[0];
}

/**
 * Takes a queued delivery off the queue because an earlier one of its stream is still pending; that
 * one queues it when it settles. False when nothing earlier is pending (the delivery may go now).
 */
export async function parkBehindEarlier(db: Database, row: Pick<DeliveryRow, 'id' | 'subscription_id' | 'order_key'>): Promise<boolean> {
  return db.transaction(async (tx) => {
    await lockStreams(tx, [row.order_key]);
    const { rowCount } = await tx.query(
      `UPDATE delivery d SET queued = false, updated_at = now() WHERE d.id = $1 AND d.status = 'pending'
         AND EXISTS (SELECT 1 FROM delivery p WHERE p.subscription_id = d.subscription_id AND p.order_key = d.order_key
           AND p.status = 'pending' AND p.change_seq < d.change_seq)`,
      [row.id],
    );
    return (rowCount ?? 0) > 0;
  });
}

/** One failed attempt, kept with its error. */
export async function recordAttempt(db: Queryable, id: number, error: string, httpStatus: number | null): Promise<void> {
  await db.query(
    `UPDATE delivery SET attempts = attempts + 1, last_error = $2, last_http_status = $3, updated_at = now() WHERE id = $1`,
    [id, error.slice(0, 1000), httpStatus],
  );
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

/** Settles deliveries in one transaction: final status, AuditEvents, next in each stream queued. */
export async function settle(db: Database, batch: Settlement[]): Promise<SettleResult> {
  return db.transaction(async (tx) => {
    const streams = batch.filter((s) => s.kind === 'event' && s.orderKey !== null);
    await lockStreams(tx, streams.map((s) => s.orderKey));
    const { rows: settled } = await tx.query<{ id: number }>(
      `UPDATE delivery d SET status = x.status, attempts = d.attempts + x.tried,
         last_http_status = COALESCE(x.http, d.last_http_status), last_error = COALESCE(x.err, d.last_error),
         delivered_at = CASE WHEN x.status = 'delivered' THEN now() END, updated_at = now()
       FROM json_to_recordset($1::json) AS x(id bigint, status text, tried int, http int, err text)
       WHERE d.id = x.id AND d.status = 'pending' RETURNING d.id`,
      [JSON.stringify(batch.map((s) => ({ id: s.id, status: s.status, tried: s.tried, http: s.httpStatus ?? null, err: s.error?.slice(0, 1000) ?? null })))],
    );
    const done = new Set(settled.map((r) => Number(r.id)));
    const mine = batch.filter((s) => done.has(s.id));
    const audit = mine.flatMap((s) => (s.audit ? [s.audit] : []));
    if (audit.length) await appendAudit(tx, audit);
    const woken = await wakeNext(tx, streams.filter((s) => done.has(s.id)));
    const activated = await touchSubscriptions(tx, mine.filter((s) => s.status === 'delivered'));
    return { woken, activated };
  });
}

async function wakeNext(tx: pg.PoolClient, streams: Settlement[]): Promise<DeliveryJobRef[]> {
  if (!streams.length) return [];
  const { rows } = await tx.query<DeliveryJobRef>(
    `UPDATE delivery n SET queued = true, generation = n.generation + 1, updated_at = now()
     WHERE n.id IN (
       SELECT DISTINCT ON (p.subscription_id, p.order_key) p.id FROM delivery p
       JOIN json_to_recordset($1::json) AS s(sub text, key text) ON p.subscription_id = s.sub AND p.order_key = s.key
       WHERE p.status = 'pending' ORDER BY p.subscription_id, p.order_key, p.change_seq)
     AND NOT n.queued RETURNING n.id, n.generation, n.subscriber`,
    [JSON.stringify(streams.map((s) => ({ sub: s.subscriptionId, key: s.orderKey })))],
  );
  return rows;
}

/**
 * A delivered notification postpones the subscription's next heartbeat; a delivered handshake makes a
 * requested subscription active, and any delivery turns a subscription in error back to active.
 */
async function touchSubscriptions(tx: pg.PoolClient, delivered: Settlement[]): Promise<string[]> {
  if (!delivered.length) return [];
  const handshakes = [...new Set(delivered.filter((s) => s.kind === 'handshake').map((s) => s.subscriptionId))];
  const subs = [...new Set(delivered.map((s) => s.subscriptionId))];
  const { rows } = await tx.query<{ id: string; was: string; status: string }>(
    `WITH l AS (SELECT id, status AS was FROM subscription_state WHERE id = ANY($1::text[])
        AND (status = 'error' OR heartbeat_seconds IS NOT NULL OR id = ANY($2::text[])) ORDER BY id FOR UPDATE)
     UPDATE subscription_state s SET
       status = CASE WHEN l.was = 'error' OR (l.was = 'requested' AND s.id = ANY($2::text[])) THEN 'active' ELSE s.status END,
       last_error = CASE WHEN l.was IN ('error', 'requested') AND s.id = ANY($2::text[]) OR l.was = 'error' THEN NULL ELSE s.last_error END,
       next_heartbeat_at = CASE WHEN s.heartbeat_seconds IS NOT NULL THEN now() + s.heartbeat_seconds * interval '1 second' END,
       updated_at = now()
     FROM l WHERE s.id = l.id RETURNING s.id, l.was, s.status`,
    [subs, handshakes],
  );
  return rows.filter((r) => r.status === 'active' && r.was !== 'active').map((r) => r.id);
}
