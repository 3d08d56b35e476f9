import { randomUUID } from 'node:crypto';
import type { Bundle, BundleEntry, Parameters, ParametersParameter, Resource } from '@medplum/fhirtypes';
import { errorConcept } from './status-error.js';
import type { PayloadContent, SubscriptionSpec } from './spec.js';

const BACKPORT = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition';
const FHIR_JSON = 'application/fhir+json';

export type NotificationType = 'handshake' | 'heartbeat' | 'event-notification' | 'query-status' | 'query-event';

/** One event as a notification reports it. */
export interface EventFacts {
  number: number;
  timestamp: Date;
  resourceType: string;
  id: string;
  versionId: number;
  action: 'create' | 'update' | 'delete';
  /** Whether the subscriber may see the version now (if not, only the event number is told). */
  visible: boolean;
  /** The version's content (null for a deletion). */
  resourceJson: string | null;
}

export interface StatusFacts {
  subscriptionId: string;
  topicUrl?: string;
  status: string;
  type: NotificationType;
  eventsSinceStart: number;
  error?: string | null;
  events: EventFacts[];
  content: PayloadContent;
  /** Backport `backport-max-count`: at most this many events (and their resources) in the Bundle. */
  maxCount?: number;
  /** Public base URL of /fhir for absolute references; relative references without it. */
  baseUrl?: string;
}

/** An HTTP request to an endpoint, before signing. */
export interface OutboundMessage {
  method: 'POST' | 'PUT' | 'DELETE';
  url: string;
  body: string;
  contentType?: string;
}

const ref = (base: string | undefined, path: string) => (base ? `${base}/${path}` : path);

/** The events a Bundle carries: the first `maxCount` of them. */
const carried = (facts: StatusFacts) => (facts.maxCount ? facts.events.slice(0, facts.maxCount) : facts.events);

/** SubscriptionStatus (R4: Parameters with the Backport IG's profile). */
export function subscriptionStatus(facts: StatusFacts): Parameters {
  const parameter: ParametersParameter[] = [
    { name: 'subscription', valueReference: { reference: ref(facts.baseUrl, `Subscription/${facts.subscriptionId}`) } },
    ...(facts.topicUrl && facts.content !== 'empty' ? [{ name: 'topic', valueCanonical: facts.topicUrl }] : []),
    { name: 'status', valueCode: facts.status },
    { name: 'type', valueCode: facts.type },
    { name: 'events-since-subscription-start', valueString: String(facts.eventsSinceStart) },
    ...carried(facts).map((e) => ({
      name: 'notification-event',
      part: [
        { name: 'event-number', valueString: String(e.number) },
        { name: 'timestamp', valueInstant: e.timestamp.toISOString() },
        ...(facts.content !== 'empty' && e.visible
          ? [{ name: 'focus', valueReference: { reference: ref(facts.baseUrl, `${e.resourceType}/${e.id}`) } }]
          : []),
      ],
    })),
    ...(facts.error ? [{ name: 'error', valueCodeableConcept: errorConcept(facts.error) }] : []),
  ];
  return { resourceType: 'Parameters', id: randomUUID(), meta: { profile: [`${BACKPORT}/backport-subscription-status-r4`] }, parameter };
}

/** A notification Bundle (type history, the SubscriptionStatus first) as the Backport IG defines for R4. */
export function notificationBundle(facts: StatusFacts): Bundle {
  const status = subscriptionStatus(facts);
  const entry: BundleEntry[] = [{
    fullUrl: `urn:uuid:${status.id}`,
    resource: status,
    request: { method: 'GET', url: ref(facts.baseUrl, `Subscription/${facts.subscriptionId}/$status`) },
    response: { status: '200' },
  }];
  if (facts.content === 'full-resource') {
    for (const e of carried(facts)) {
      if (!e.visible) continue;
      const deleted = e.action === 'delete' || e.resourceJson === null;
      entry.push({
        fullUrl: ref(facts.baseUrl, `${e.resourceType}/${e.id}`),
        ...(deleted ? {} : { resource: JSON.parse(e.resourceJson!) as Resource }),
        request: {
          method: deleted ? 'DELETE' : e.action === 'create' ? 'POST' : 'PUT',
          url: e.action === 'create' ? e.resourceType : `${e.resourceType}/${e.id}`,
        },
        response: { status: deleted ? '204' : e.action === 'create' ? '201' : '200' },
      });
    }
  }
  return {
    resourceType: 'Bundle',
    id: randomUUID(),
    meta: { profile: [`${BACKPORT}/backport-subscription-notification-r4`] },
    type: 'history',
    timestamp: new Date().toISOString(),
    entry,
  };
}

/**
 * The request a notification makes. Topic-based: a notification Bundle POSTed to the endpoint. R4
 * criteria-based: with a payload, the resource is PUT to `[endpoint]/[type]/[id]` (DELETE there for a
 * deletion); without one, an empty POST to the endpoint.
 */
export function notificationMessage(spec: SubscriptionSpec, facts: StatusFacts): OutboundMessage {
  if (spec.kind === 'topic') {
    return { method: 'POST', url: spec.endpoint, body: JSON.stringify(notificationBundle(facts)), contentType: FHIR_JSON };
  }
  const event = facts.events[0];
  if (!spec.payload || !event?.visible) return { method: 'POST', url: spec.endpoint, body: '' };
  const url = `${spec.endpoint.replace(/\/+$/, '')}/${event.resourceType}/${encodeURIComponent(event.id)}`;
  if (event.action === 'delete' || event.resourceJson === null) return { method: 'DELETE', url, body: '' };
  return { method: 'PUT', url, body: event.resourceJson, contentType: FHIR_JSON };
}
