import type { Queryable } from '../store/db.js';
import type { DeliveryJobRef } from './deliveries.js';

export const DELIVERY_STATUSES = ['pending', 'delivered', 'dead', 'withheld', 'cancelled'] as const;
export const DELIVERY_KINDS = ['event', 'handshake', 'heartbeat'] as const;

export interface DeliveryFilter {
  subscriptionId?: string;
  status?: (typeof DELIVERY_STATUSES)[number];
  kind?: (typeof DELIVERY_KINDS)[number];
  count: number;
  offset: number;
}

/** A delivery as /admin/deliveries shows it (no resource content: that stays behind Consent). */
export interface DeliveryView {
  id: number;
  subscription: string;
  subscriber: string | null;
  kind: string;
  status: string;
  resource: string | null;
  action: string | null;
  eventNumber: number | null;
  attempts: number;
  waiting: boolean;
  lastError: string | null;
  lastHttpStatus: number | null;
  changedAt: string | null;
  createdAt: string;
  deliveredAt: string | null;
}

const COLUMNS = `id, subscription_id, subscriber, kind, status, resource_type, resource_id, version_id, action, event_number,
  attempts, queued, last_error, last_http_status, changed_at, created_at, delivered_at`;

interface Row {
  id: number; subscription_id: string; subscriber: string | null; kind: string; status: string; resource_type: string | null;
  resource_id: string | null; version_id: number | null; action: string | null; event_number: number | null; attempts: number;
  queued: boolean; last_error: string | null; last_http_status: number | null; changed_at: Date | null; created_at: Date;
  delivered_at: Date | null;
}

function view(r: Row): DeliveryView {
  return {
    id: Number(r.id),
    subscription: `Subscription/${r.subscription_id}`,
    subscriber: r.subscriber && `Organization/${r.subscriber}`,
    kind: r.kind,
    status: r.status,
    resource: r.resource_type ? `${r.resource_type}/${r.resource_id}/_history/${r.version_id}` : null,
    action: r.action,
    eventNumber: r.event_number === null ? null : Number(r.event_number),
    attempts: r.attempts,
    waiting: r.status === 'pending' && !r.queued,
    lastError: r.last_error,
    lastHttpStatus: r.last_http_status,
    changedAt: r.changed_at?.toISOString() ?? null,
    createdAt: r.created_at.toISOString(),
    deliveredAt: r.delivered_at?.toISOString() ?? null,
  };
}

/** Matching deliveries are counted up to this many: an exact count of a large table reads all of it. */
export const COUNT_LIMIT = 10_000;

/** A page of deliveries and how many match (`totalAtLeast`: more than COUNT_LIMIT match, `total` is that limit). */
export interface DeliveryList {
  total: number;
  totalAtLeast?: true;
  deliveries: DeliveryView[];
}

export async function listDeliveries(db: Queryable, filter: DeliveryFilter): Promise<DeliveryList> {
  const where: string[] = [];
  const values: unknown[] = [];
  const add = (sql: string, value: unknown) => {
    values.push(value);
    where.push(sql.replace('?', `$${values.length}`));
  };
  if (filter.subscriptionId) add('subscription_id = ?', filter.subscriptionId);
  if (filter.status) {
    // Written as a literal, so the planner can use a partial index (delivery_by_status for settled ones, delivery_stream
    // for pending ones); hence checked here too.
    if (!DELIVERY_STATUSES.includes(filter.status)) throw new Error(`unknown delivery status ${filter.status}`);
    where.push(`status = '${filter.status}'`);
  }
  if (filter.kind) add('kind = ?', filter.kind);
  const condition = where.length ? `WHERE ${where.join(' AND ')}` : '';
  const [page, count] = await Promise.all([
    db.query<Row>(`SELECT ${COLUMNS} FROM delivery ${condition} ORDER BY id DESC LIMIT ${filter.count} OFFSET ${filter.offset}`, values),
    db.query<{ n: number }>(`SELECT count(*) AS n FROM (SELECT 1 FROM delivery ${condition} LIMIT ${COUNT_LIMIT + 1}) matching`, values),
  ]);
  const n = Number(count.rows[0].n);
  const deliveries = page.rows.map(view);
  return n > COUNT_LIMIT ? { total: COUNT_LIMIT, totalAtLeast: true, deliveries } : { total: n, deliveries };
}

export async function getDelivery(db: Queryable, id: number): Promise<DeliveryView | undefined> {
  const { rows } = await db.query<Row>(`SELECT ${COLUMNS} FROM delivery WHERE id = $1`, [id]);
  return rows[0] && view(rows[0]);
}

/** Puts a dead letter back in the queue as a fresh delivery (same idempotency key, attempts from zero). */
export async function replayDead(db: Queryable, id: number): Promise<DeliveryJobRef | undefined> {
  const { rows } = await db.query<DeliveryJobRef>(
    `UPDATE delivery SET status = 'pending', queued = true, generation = generation + 1, attempts = 0, updated_at = now()
     WHERE id = $1 AND status = 'dead' RETURNING id, generation, subscriber`,
    [id],
  );
  return rows[0];
}
