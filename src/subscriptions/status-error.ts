import type { CodeableConcept } from '@medplum/fhirtypes';

const SUBSCRIPTION_ERROR = 'http://terminology.hl7.org/CodeSystem/subscription-error';

/** Subscription Error Codes by the kind of failure the gateway recorded (its text says the rest). */
const KINDS: [pattern: RegExp, code: string, display: string][] = [
  [/^HTTP \d{3}/, 'error-response', 'Error response'],
  [/ENOTFOUND|EAI_AGAIN|getaddrinfo/i, 'dns-resolution-error', 'DNS resolution error'],
  [/no complete answer|ECONNREFUSED|ECONNRESET|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|socket hang up/i, 'no-response', 'No response'],
];

/**
 * SubscriptionStatus.error for a recorded failure: the Subscription Error Code of its kind (error
 * response, DNS resolution, no response) with the failure itself as text; text alone for anything else
 * (an endpoint the policy refuses, a Subscription the gateway can no longer serve).
 */
export function errorConcept(error: string): CodeableConcept {
  const kind = KINDS.find(([pattern]) => pattern.test(error));
  return {
    ...(kind ? { coding: [{ system: SUBSCRIPTION_ERROR, code: kind[1], display: kind[2] }] } : {}),
    text: error,
  };
}
