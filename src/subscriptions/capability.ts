import type { CapabilityStatementRestResource } from '@medplum/fhirtypes';
import { BACKPORT_PROFILE } from './spec.js';
import { TOPICS } from './topics.js';

const BACKPORT = 'http://hl7.org/fhir/uv/subscriptions-backport';

/** The Backport IG's server capability this gateway claims, and its implementation guide. */
export const SUBSCRIPTION_CAPABILITY = {
  instantiates: `${BACKPORT}/CapabilityStatement/backport-subscription-server-r4`,
  implementationGuide: `${BACKPORT}/ImplementationGuide/hl7.fhir.uv.subscriptions-backport`,
};

/**
 * What the CapabilityStatement says about Subscription: R4 criteria-based and Backport IG topic-based
 * rest-hook and websocket subscriptions, the topics offered, and the $status, $events and
 * $get-ws-binding-token operations.
 */
export function describeSubscriptions(resource: CapabilityStatementRestResource): CapabilityStatementRestResource {
  if (resource.type !== 'Subscription') return resource;
  return {
    ...resource,
    extension: TOPICS.map((t) => ({ url: `${BACKPORT}/StructureDefinition/capabilitystatement-subscriptiontopic-canonical`, valueCanonical: t.url })),
    supportedProfile: [...(resource.supportedProfile ?? []), BACKPORT_PROFILE],
    documentation: 'Channels rest-hook and (topic-based only) websocket. R4 criteria (Type?params): payload none = empty POST to the endpoint; ' +
      'application/fhir+json = PUT [endpoint]/[type]/[id] (DELETE there for a deletion). Topic-based (Backport IG): ' +
      'notification Bundles with content empty, id-only or full-resource, handshake and heartbeats. Every notification ' +
      'is checked against Consent for the subscriber\'s Organization at send time and signed: X-Renkei-Signature: ' +
      'sha256=<HMAC-SHA256 of the body under the subscription-secret extension>, X-Renkei-Idempotency-Key. websocket: ' +
      '$get-ws-binding-token, then send "bind-with-token <token>" to the websocket-url it returns; the handshake, ' +
      'notification and heartbeat Bundles follow as text messages; events sent while no client was bound: $events.',
    operation: [
      ...(resource.operation ?? []),
      { name: 'status', definition: `${BACKPORT}/OperationDefinition/backport-subscription-status` },
      { name: 'events', definition: `${BACKPORT}/OperationDefinition/backport-subscription-events` },
      { name: 'get-ws-binding-token', definition: `${BACKPORT}/OperationDefinition/backport-subscription-get-ws-binding-token` },
    ],
  };
}
