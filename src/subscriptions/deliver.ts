import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import { parkBehindEarlier, recordAttempt, type DeliveryRow, type FinalStatus, type Settlement } from '../exchange/deliveries.js';
import type { DeliveryLoader } from '../exchange/delivery-loader.js';
import { afterFailure } from '../exchange/retry.js';
import type { ExchangeSettings } from '../exchange/settings.js';
import { deliveryLatency, deliveryOutcomes } from '../exchange/metrics.js';
import { log } from '../logger.js';
import { DEFAULT_PURPOSE } from '../store/access.js';
import type { Database } from '../store/db.js';
import { notificationAudit } from './audit.js';
import { hostOf } from './endpoint-policy.js';
import { notificationMessage, type StatusFacts } from './notification.js';
import { EVENT_NUMBER_HEADER, IDEMPOTENCY_HEADER, idempotencyKey, sign, SIGNATURE_HEADER, SUBSCRIPTION_HEADER, TIMESTAMP_HEADER } from './signature.js';
import type { SubscriptionSpec } from './spec.js';
import type { SpecCache } from './state.js';
import { DeliveryFailure, type WebhookClient } from './webhook-client.js';

/** Data of a `deliveries` job: the delivery row and whose eyes (and for what purpose) the notification is checked with. */
export interface DeliveryJobData {
  delivery: number;
  subscriber: string | null;
  purpose?: string;
}

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
  /** A failed attempt (`final`: the last one): counted, and the subscription may go to error. */
  subscriptionFailed(subscriptionId: string, kind: DeliveryRow['kind'], error: string, final: boolean): Promise<void>;
}

/** An earlier change about the same patient is still being matched: look again shortly. */
const WAIT_FOR_MATCHING_MS = 100;
const MAX_ATTEMPTS: Record<DeliveryRow['kind'], number | undefined> = { event: undefined, handshake: 3, heartbeat: 1 };

/**
 * Sends one notification: re-reads it (a settled one is not sent twice), keeps the stream's order,
 * re-checks at send time that the subscriber may still see the resource (a revoked Consent withholds
 * what was queued), builds and signs the request, sends it and settles the outcome. A failed attempt
 * is retried by the queue with backoff until the retry limit or age, then the delivery is dead.
 */
export function deliveryProcessor(deps: DeliveryDeps) {
  return async (job: Job<DeliveryJobData>, token?: string): Promise<string> => {
    const row = await deps.loader.load(job.data.delivery, job.data.subscriber, job.data.purpose);
    if (!row || row.status !== 'pending') return 'already settled';
    const decided = (status: FinalStatus, error?: string) => settleWithout(deps, row, status, error);
    if (!row.subscription_version || !row.subscription_status || row.subscription_status === 'off') return decided('cancelled', 'Subscription is off or deleted');
    if (row.kind === 'event') {
      if (row.waits_for_change) {
        await job.moveToDelayed(Date.now() + WAIT_FOR_MATCHING_MS, token);
        throw new DelayedError();
      }
      if (row.waits_for_earlier && (await parkBehindEarlier(deps.db, row))) return 'waiting behind an earlier notification';
      if (!row.visible) return decided('withheld', 'The subscriber may no longer see this resource');
    }
    const spec = (await deps.specs.get(deps.db, [{ id: row.subscription_id, versionId: row.subscription_version }])).get(row.subscription_id);
    if (!spec) return decided('cancelled', 'The Subscription can no longer be served');
    if (spec.status === 'off') return decided('cancelled', 'Subscription is off');
    const message = notificationMessage(spec, statusFacts(spec, row, deps.baseUrl));
    const headers = signedHeaders(spec, row, message.body);
    let status: number;
    try {
      status = await deps.client.send(message, headers, Math.min(deps.settings.deliveryTimeoutMs, (spec.timeoutSeconds ?? Infinity) * 1000));
    } catch (err) {
      return failed(deps, row, err);
    }
    await deps.settleDelivered({
      id: row.id, subscriptionId: row.subscription_id, kind: row.kind, orderKey: row.order_key, status: 'delivered', tried: 1,
      httpStatus: status, audit: notificationAudit(auditFacts(spec, row)),
    });
    deliveryOutcomes.inc({ kind: row.kind, outcome: 'delivered' });
    if (row.kind === 'event' && row.changed_at) deliveryLatency.observe((Date.now() - row.changed_at.getTime()) / 1000);
    return 'delivered';
  };
}

async function settleWithout(deps: DeliveryDeps, row: DeliveryRow, status: FinalStatus, error?: string): Promise<string> {
  await deps.settle({ id: row.id, subscriptionId: row.subscription_id, kind: row.kind, orderKey: row.order_key, status, tried: 0, error });
  deliveryOutcomes.inc({ kind: row.kind, outcome: status });
  log.info({ delivery: row.id, subscription: row.subscription_id, status }, 'notification not sent');
  return status;
}

async function failed(deps: DeliveryDeps, row: DeliveryRow, err: unknown): Promise<never> {
  const failure = err instanceof DeliveryFailure ? err : new DeliveryFailure(String((err as Error)?.message ?? err));
  const attempts = row.attempts + 1;
  const decision = afterFailure(attempts, row.created_at, deps.settings, MAX_ATTEMPTS[row.kind] ?? deps.settings.deliveryAttempts);
  log.warn({ delivery: row.id, subscription: row.subscription_id, attempt: attempts, error: failure.message }, 'notification attempt failed');
  if (!decision.retry) {
    await deps.settle({
      id: row.id, subscriptionId: row.subscription_id, kind: row.kind, orderKey: row.order_key, status: 'dead', tried: 1,
      httpStatus: failure.httpStatus, error: `${failure.message}; ${decision.reason}`,
    });
    deliveryOutcomes.inc({ kind: row.kind, outcome: 'dead' });
    await deps.subscriptionFailed(row.subscription_id, row.kind, failure.message, true);
    throw new UnrecoverableError(`${failure.message}; ${decision.reason}`);
  }
  await recordAttempt(deps.db, row.id, failure.message, failure.httpStatus);
  deliveryOutcomes.inc({ kind: row.kind, outcome: 'retry' });
  await deps.subscriptionFailed(row.subscription_id, row.kind, failure.message, false);
  throw failure;
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
    endpointHost: hostOf(new URL(spec.endpoint)),
    purpose: row.purpose ?? DEFAULT_PURPOSE,
    eventNumber: row.event_number,
    resource: row.kind === 'event'
      ? { type: row.resource_type!, id: row.resource_id!, versionId: row.version_id!, owner: row.data_owner, patientId: row.patient_id }
      : undefined,
  };
}
