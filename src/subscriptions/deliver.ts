import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import pLimit, { type LimitFunction } from 'p-limit';
import { parkBehindEarlier, recordAttempt, type DeliveryJobRef, type DeliveryRow, type FinalStatus, type Settlement } from '../exchange/deliveries.js';
import type { DeliveryLoader } from '../exchange/delivery-loader.js';
import { afterFailure } from '../exchange/retry.js';
import type { ExchangeSettings } from '../exchange/settings.js';
import { deliveryLatency, deliveryOutcomes } from '../exchange/metrics.js';
import { log } from '../logger.js';
import { DEFAULT_PURPOSE } from '../store/access.js';
import type { Database } from '../store/db.js';
import { notificationAudit } from './audit.js';
import { hostOf } from './endpoint-policy.js';
import { notificationMessage, type OutboundMessage, type StatusFacts } from './notification.js';
import { EVENT_NUMBER_HEADER, IDEMPOTENCY_HEADER, idempotencyKey, sign, SIGNATURE_HEADER, SUBSCRIPTION_HEADER, TIMESTAMP_HEADER } from './signature.js';
import type { SubscriptionSpec } from './spec.js';
import type { SpecCache } from './state.js';
import { DeliveryFailure, type WebhookClient } from './webhook-client.js';
import { publishToSockets } from './websocket/channel.js';

/** Data of a `deliveries` job for one delivery: the row and whose eyes (and for what purpose) it is checked with. */
export interface DeliveryJobData {
  delivery: number;
  subscriber: string | null;
  purpose?: string;
  /** Failed attempts made before the delivery left its batch (its backoff continues from there). */
  attempted?: number;
  /** In a batch: the row's generation the batch was made for (0 when absent); another means another job has the row. */
  generation?: number;
}

/** Data of a batch job: deliveries of one change, queued by its matching or woken together (see batchJobId). */
export interface DeliveryBatchData {
  deliveries: DeliveryJobData[];
}

export const DELIVERY_JOB = 'deliver';
export const DELIVERY_BATCH_JOB = 'deliver-batch';

export const jobDataOf = (ref: DeliveryJobRef): DeliveryJobData =>
  ({ delivery: Number(ref.id), subscriber: ref.subscriber, ...(ref.purpose ? { purpose: ref.purpose } : {}) });

export const memberDataOf = (ref: DeliveryJobRef): DeliveryJobData => ({ ...jobDataOf(ref), ...(ref.generation ? { generation: ref.generation } : {}) });

export interface DeliveryDeps {
  db: Database;
  /** Reads delivery rows, batching the reads of concurrent jobs. */
  loader: DeliveryLoader;
  specs: SpecCache;
  client: WebhookClient;
  settings: ExchangeSettings;
  baseUrl?: string;
  /** Settles the delivery (batched with others), then queues what waited behind it. */
  settle(settlement: Settlement): Promise<void>;
  /** The same for a delivered notification, without waiting for the commit unless settlements pile up. */
  settleDelivered(settlement: Settlement): Promise<void>;
  /** Queues a delivery that left its batch in a job of its own, after `delayMs`. */
  enqueueLater(ref: DeliveryJobRef, delayMs: number, attempted: number): Promise<void>;
  /** A failed attempt (`final`: the last one): counted, and the subscription may go to error. */
  subscriptionFailed(subscriptionId: string, kind: DeliveryRow['kind'], error: string, final: boolean): Promise<void>;
}

/** An earlier change about the same patient is still being matched: look again shortly. */
const WAIT_FOR_MATCHING_MS = 100;
const MAX_ATTEMPTS: Record<DeliveryRow['kind'], number | undefined> = { event: undefined, handshake: 3, heartbeat: 1 };

/** How one attempt ended: settled (sent, decided without sending, or given up), to look again later, or to retry. */
type Attempt =
  | { settled: string; dead?: string }
  | { waitMs: number }
  | { failure: DeliveryFailure; delayMs: number; attempts: number; generation?: number };

/**
 * Sends notifications. A job carries one delivery or a batch of a change's deliveries; each is re-read (a
 * settled one is not sent twice), keeps its stream's order, is re-checked at send time against what the
 * subscriber may still see (a revoked Consent withholds what was queued), built, signed, sent and settled.
 * A failed attempt is retried with backoff until the retry limit or age, then the delivery is dead: a
 * single delivery's job is retried by the queue; a batch member takes a job of its own for its retry.
 */
export function deliveryProcessor(deps: DeliveryDeps) {
  const slots = pLimit(deps.settings.deliveryConcurrency);
  return async (job: Job<DeliveryJobData | DeliveryBatchData>, token?: string): Promise<string> => {
    if (job.name === DELIVERY_BATCH_JOB) return deliverBatch(deps, job as Job<DeliveryBatchData>, token, slots);
    return slots(() => deliverOne(deps, job as Job<DeliveryJobData>, token));
  };
}

async function deliverOne(deps: DeliveryDeps, job: Job<DeliveryJobData>, token?: string): Promise<string> {
  const row = await deps.loader.load(job.data.delivery, job.data.subscriber, job.data.purpose);
  if (!row || row.status !== 'pending') return 'already settled';
  const outcome = await attempt(deps, row, false);
  if ('waitMs' in outcome) {
    await job.moveToDelayed(Date.now() + outcome.waitMs, token);
    throw new DelayedError();
  }
  if ('failure' in outcome) throw outcome.failure;
  if (outcome.dead) throw new UnrecoverableError(outcome.dead);
  return outcome.settled;
}

/**
 * The members of a batch go at once (within the worker's delivery concurrency). They are one change's
 * notifications, so they share its patient: while an earlier change about that patient is still being
 * matched, they all wait, and the batch is looked at again shortly as a whole. If the store fails under
 * a member, the batch job fails after the others finished and is retried: settled members are skipped.
 */
async function deliverBatch(deps: DeliveryDeps, job: Job<DeliveryBatchData>, token: string | undefined, slots: LimitFunction): Promise<string> {
  const results = await Promise.allSettled(job.data.deliveries.map((data) => slots(() => deliverMember(deps, data))));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  const outcomes = (results as PromiseFulfilledResult<string>[]).map((r) => r.value);
  if (outcomes.includes(WAITING_FOR_MATCHING)) {
    await job.moveToDelayed(Date.now() + WAIT_FOR_MATCHING_MS, token);
    throw new DelayedError();
  }
  const counts = new Map<string, number>();
  for (const outcome of outcomes) counts.set(outcome, (counts.get(outcome) ?? 0) + 1);
  return [...counts].map(([what, n]) => `${n} ${what}`).join(', ');
}

const WAITING_FOR_MATCHING = 'waiting for an earlier change to be matched';

async function deliverMember(deps: DeliveryDeps, data: DeliveryJobData): Promise<string> {
  const row = await deps.loader.load(data.delivery, data.subscriber, data.purpose);
  if (!row || row.status !== 'pending') return 'already settled';
  if (row.generation !== (data.generation ?? 0)) return 'in another job';
  const outcome = await attempt(deps, row, true);
  if ('waitMs' in outcome) return WAITING_FOR_MATCHING;
  if ('failure' in outcome) {
    const ref = { id: row.id, subscriber: row.subscriber, purpose: row.purpose ?? undefined };
    if (outcome.generation !== undefined) await deps.enqueueLater({ ...ref, generation: outcome.generation }, outcome.delayMs, outcome.attempts);
    return 'to be retried';
  }
  return outcome.dead ? 'dead' : outcome.settled;
}

/** One attempt at a pending delivery; `ownJob`: a retry takes the delivery out of its batch. */
async function attempt(deps: DeliveryDeps, row: DeliveryRow, ownJob: boolean): Promise<Attempt> {
  const decided = async (status: FinalStatus, error?: string) => ({ settled: await settleWithout(deps, row, status, error) });
  if (!row.subscription_version || !row.subscription_status || row.subscription_status === 'off') return decided('cancelled', 'Subscription is off or deleted');
  if (row.kind === 'event') {
    if (row.waits_for_change) return { waitMs: WAIT_FOR_MATCHING_MS };
    if (row.waits_for_earlier && (await parkBehindEarlier(deps.db, row))) return { settled: 'waiting behind an earlier notification' };
    if (!row.visible) return decided('withheld', 'The subscriber may no longer see this resource');
  }
  const spec = (await deps.specs.get(deps.db, [{ id: row.subscription_id, versionId: row.subscription_version }])).get(row.subscription_id);
  if (!spec) return decided('cancelled', 'The Subscription can no longer be served');
  if (spec.status === 'off') return decided('cancelled', 'Subscription is off');
  const message = notificationMessage(spec, statusFacts(spec, row, deps.baseUrl));
  let sent: Transmission;
  try {
    sent = await transmit(deps, spec, row, message);
  } catch (err) {
    return failed(deps, row, err, ownJob);
  }
  if (!sent.received) return decided('cancelled', NOBODY_BOUND);
  await deps.settleDelivered({
    id: row.id, subscriptionId: row.subscription_id, kind: row.kind, orderKey: row.order_key, status: 'delivered', tried: 1,
    httpStatus: sent.httpStatus, audit: notificationAudit(auditFacts(spec, row)),
  });
  deliveryOutcomes.inc({ kind: row.kind, outcome: 'delivered' });
  if (row.kind === 'event' && row.changed_at) deliveryLatency.observe((Date.now() - row.changed_at.getTime()) / 1000);
  return { settled: 'delivered' };
}

const NOBODY_BOUND = 'No client was bound to the websocket; $events returns the event';

/** Whether a notification went out: a rest-hook's answer, or a websocket's bound clients (none: not sent). */
type Transmission = { received: true; httpStatus: number | null } | { received: false };

/** Sends a notification: signed over HTTP to a rest-hook endpoint, or handed to the clients bound to a websocket. */
async function transmit(deps: DeliveryDeps, spec: SubscriptionSpec, row: DeliveryRow, message: OutboundMessage): Promise<Transmission> {
  if (spec.channel === 'websocket')
    return (await publishToSockets(deps.db, row.subscription_id, message.body)) ? { received: true, httpStatus: null } : { received: false };
  const timeoutMs = Math.min(deps.settings.deliveryTimeoutMs, (spec.timeoutSeconds ?? Infinity) * 1000);
  return { received: true, httpStatus: await deps.client.send(message, signedHeaders(spec, row, message.body), timeoutMs) };
}

async function settleWithout(deps: DeliveryDeps, row: DeliveryRow, status: FinalStatus, error?: string): Promise<string> {
  await deps.settle({ id: row.id, subscriptionId: row.subscription_id, kind: row.kind, orderKey: row.order_key, status, tried: 0, error });
  deliveryOutcomes.inc({ kind: row.kind, outcome: status });
  log.info({ delivery: row.id, subscription: row.subscription_id, status }, 'notification not sent');
  return status;
}

async function failed(deps: DeliveryDeps, row: DeliveryRow, err: unknown, ownJob: boolean): Promise<Attempt> {
  const failure = err instanceof DeliveryFailure ? err : new DeliveryFailure(String((err as Error)?.message ?? err));
  const attempts = row.attempts + 1;
  const decision = afterFailure(attempts, row.created_at, deps.settings, MAX_ATTEMPTS[row.kind] ?? deps.settings.deliveryAttempts);
  log.warn({ delivery: row.id, subscription: row.subscription_id, attempt: attempts, error: failure.message }, 'notification attempt failed');
  if (!decision.retry) {
    const reason = `${failure.message}; ${decision.reason}`;
    await deps.settle({
      id: row.id, subscriptionId: row.subscription_id, kind: row.kind, orderKey: row.order_key, status: 'dead', tried: 1,
      httpStatus: failure.httpStatus, error: reason,
    });
    deliveryOutcomes.inc({ kind: row.kind, outcome: 'dead' });
    await deps.subscriptionFailed(row.subscription_id, row.kind, failure.message, true);
    return { settled: 'dead', dead: reason };
  }
  const generation = await recordAttempt(deps.db, row.id, failure.message, failure.httpStatus, ownJob);
  deliveryOutcomes.inc({ kind: row.kind, outcome: 'retry' });
  await deps.subscriptionFailed(row.subscription_id, row.kind, failure.message, false);
  return { failure, delayMs: decision.delayMs, attempts, generation };
}

function statusFacts(spec: SubscriptionSpec, row: DeliveryRow, baseUrl?: string): StatusFacts {
  const event = row.kind === 'event';
  return {
    subscriptionId: row.subscription_id,
    topicUrl: spec.topic?.url,
    status: row.subscription_status ?? (row.kind === 'handshake' ? 'requested' : 'active'),
    type: event ? 'event-notification' : (row.kind as 'handshake' | 'heartbeat'),
    eventsSinceStart: event ? row.event_number ?? 0 : row.events ?? 0,
    error: row.subscription_status === 'error' ? row.subscription_error : null,
    maxCount: spec.maxCount,
    content: spec.content,
    baseUrl,
    events: event
      ? [{
        number: row.event_number ?? 0, timestamp: row.changed_at ?? row.created_at, resourceType: row.resource_type!,
        id: row.resource_id!, versionId: row.version_id!, action: row.action!, visible: row.visible, resourceJson: row.resource_json,
      }]
      : [],
  };
}

function signedHeaders(spec: SubscriptionSpec, row: DeliveryRow, body: string): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of spec.headers) headers[name] = value;
  const key = idempotencyKey({
    subscriptionId: row.subscription_id, kind: row.kind, id: row.id,
    resourceType: row.resource_type, resourceId: row.resource_id, versionId: row.version_id,
  });
  headers[IDEMPOTENCY_HEADER] = key;
  headers[SUBSCRIPTION_HEADER] = `Subscription/${row.subscription_id}`;
  if (row.event_number) headers[EVENT_NUMBER_HEADER] = String(row.event_number);
  if (spec.secret) {
    const timestamp = String(Math.floor(Date.now() / 1000));
    headers[TIMESTAMP_HEADER] = timestamp;
    headers[SIGNATURE_HEADER] = sign(spec.secret, { timestamp, idempotencyKey: key, body });
  }
  return headers;
}

function auditFacts(spec: SubscriptionSpec, row: DeliveryRow) {
  return {
    subscriptionId: row.subscription_id,
    subscriber: row.subscriber,
    kind: row.kind,
    endpointHost: spec.channel === 'rest-hook' ? hostOf(new URL(spec.endpoint)) : undefined,
    purpose: row.purpose ?? DEFAULT_PURPOSE,
    eventNumber: row.event_number,
    resource: row.kind === 'event'
      ? { type: row.resource_type!, id: row.resource_id!, versionId: row.version_id!, owner: row.data_owner, patientId: row.patient_id }
      : undefined,
  };
}
