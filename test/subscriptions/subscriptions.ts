import type { Subscription } from '@medplum/fhirtypes';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import { organizationClient, type FhirClient } from '../support/fhir-client.js';
import { patient } from '../support/resources.js';
import { ADMIN_TOKEN, startTestStack, type TestStack } from '../support/stack.js';
import { Receiver } from './receiver.js';

const BACKPORT = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition';
export const SECRET_EXTENSION = 'http://renkei.jp/fhir/StructureDefinition/subscription-secret';
export const TOPIC = (id: string) => `http://renkei.jp/fhir/SubscriptionTopic/${id}`;

/** Settings for stacks that deliver: workers in process, quick retries and heartbeat checks. */
export const DELIVERING: Record<string, string> = {
  RENKEI_WORKERS: 'on',
  RENKEI_DELIVERY_BACKOFF_MS: '20',
  RENKEI_DELIVERY_BACKOFF_MAX_MS: '200',
  RENKEI_HEARTBEAT_TICK_MS: '100',
};

/** What a subscription test file works with; filled in by the hooks `subscriptionSuite` registers. */
export interface SubscriptionSuite {
  stack: TestStack;
  /** The Organization client that records the patient. */
  clinic: FhirClient;
  /** A second Organization's client, when one is named. */
  facility: FhirClient;
  /** A fresh receiver for each test. */
  receiver: Receiver;
  patientId: string;
}

/**
 * Registers the hooks of a subscription test file: one delivering stack (DELIVERING and `env`), the
 * clinic's client with a patient of that identifier, the facility's client if named, and a receiver
 * started before each test and closed after it.
 */
export function subscriptionSuite(options: { env?: Record<string, string>; clinic: string; facility?: string; patient: string }): SubscriptionSuite {
  const suite = {} as SubscriptionSuite;
  beforeAll(async () => {
    suite.stack = await startTestStack({ ...DELIVERING, ...options.env });
    suite.clinic = await organizationClient(suite.stack, options.clinic);
    if (options.facility) suite.facility = await organizationClient(suite.stack, options.facility);
    suite.patientId = (await suite.clinic.post('Patient', patient(options.patient))).body.id;
  });
  afterAll(() => suite.stack?.stop());
  beforeEach(async () => {
    suite.receiver = await Receiver.start();
  });
  afterEach(() => suite.receiver.close());
  return suite;
}

export function criteriaSubscription(endpoint: string, criteria: string, options: { payload?: boolean; headers?: string[]; secret?: string } = {}): Subscription {
  return {
    resourceType: 'Subscription',
    status: 'requested',
    reason: '処方変更の通知',
    criteria,
    channel: {
      type: 'rest-hook',
      endpoint,
      ...(options.payload === false ? {} : { payload: 'application/fhir+json' }),
      ...(options.headers ? { header: options.headers } : {}),
    },
    ...(options.secret ? { extension: [{ url: SECRET_EXTENSION, valueString: options.secret }] } : {}),
  };
}

export function topicSubscription(
  endpoint: string,
  topic: string,
  options: { filters?: string[]; content?: 'empty' | 'id-only' | 'full-resource'; heartbeat?: number } = {},
): Subscription {
  return {
    resourceType: 'Subscription',
    meta: { profile: [`${BACKPORT}/backport-subscription`] },
    status: 'requested',
    reason: 'topic-based notification',
    criteria: TOPIC(topic),
    ...(options.filters ? { _criteria: { extension: options.filters.map((valueString) => ({ url: `${BACKPORT}/backport-filter-criteria`, valueString })) } } : {}),
    channel: {
      type: 'rest-hook',
      endpoint,
      payload: 'application/fhir+json',
      _payload: { extension: [{ url: `${BACKPORT}/backport-payload-content`, valueCode: options.content ?? 'id-only' }] },
      ...(options.heartbeat ? { extension: [{ url: `${BACKPORT}/backport-heartbeat-period`, valueUnsignedInt: options.heartbeat }] } : {}),
    },
  } as Subscription;
}

/** Polls until `check` holds; the deadline only bounds a failure. */
export async function eventually<T>(check: () => Promise<T | undefined | false>, what: string, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until the gateway has decided whom the changes of these resources notify (every version). */
export async function changesMatched(stack: TestStack, resourceIds: string[]): Promise<void> {
  await eventually(async () => {
    const { rows } = await stack.gateway.services.db.query<{ n: number }>(
      'SELECT count(*) AS n FROM outbox WHERE id = ANY($1::text[]) AND matched_at IS NULL', [resourceIds]);
    return rows[0].n === 0;
  }, `the changes of ${resourceIds.join(', ')} to be matched`);
}

export async function waitForStatus(client: FhirClient, id: string, status: string): Promise<Subscription> {
  return eventually(async () => {
    const res = await client.get<Subscription>(`Subscription/${id}`);
    return res.body.status === status ? res.body : undefined;
  }, `Subscription/${id} to become ${status}`);
}

/** Creates a Subscription and waits until the gateway made it active. */
export async function subscribe(client: FhirClient, subscription: Subscription, status = 'active'): Promise<Subscription> {
  const created = await client.post<Subscription>('Subscription', subscription);
  if (created.status !== 201) throw new Error(`Subscription: ${created.status} ${JSON.stringify(created.body)}`);
  return waitForStatus(client, created.body.id!, status);
}

export function secretOf(subscription: Subscription): string {
  return subscription.extension!.find((e) => e.url === SECRET_EXTENSION)!.valueString!;
}

export interface DeliveryView {
  id: number;
  subscription: string;
  kind: string;
  status: string;
  resource: string | null;
  eventNumber: number | null;
  attempts: number;
  waiting: boolean;
  lastError: string | null;
  lastHttpStatus: number | null;
}

export async function adminDeliveries(stack: TestStack, query = ''): Promise<{ total: number; deliveries: DeliveryView[] }> {
  const res = await fetch(`${stack.url}/admin/deliveries${query ? `?${query}` : ''}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  if (res.status !== 200) throw new Error(`/admin/deliveries: ${res.status}`);
  return (await res.json()) as { total: number; deliveries: DeliveryView[] };
}

/** The SubscriptionStatus parameters of a notification Bundle, by name. */
export function statusOf(bundle: any): Record<string, any> {
  const parameters = bundle.entry[0].resource.parameter as { name: string }[];
  return Object.fromEntries(parameters.map((p) => [p.name, p]));
}
