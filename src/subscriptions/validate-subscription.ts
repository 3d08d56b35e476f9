import { randomBytes } from 'node:crypto';
import type { Resource, Subscription } from '@medplum/fhirtypes';
import type { Caller } from '../fhir/caller.js';
import { FhirError, type Issue } from '../fhir/outcome.js';
import type { Queryable } from '../store/db.js';
import { endpointPolicyFor, endpointProblem } from './endpoint-policy.js';
import { EXTENSIONS, MIN_SECRET_LENGTH, parseSubscription, SpecError } from './spec.js';

/**
 * What a Subscription must be before it is stored (called by FhirService for every create and update):
 * a channel, criteria or topic, payload and headers the gateway can serve, an endpoint the SSRF policy
 * allows, written by an Organization's client (notifications are checked against that Organization's
 * Consents). Anything else answers 422.
 *
 * It also keeps the signing secret: a Subscription written without the secret extension keeps the
 * secret of its current version, or gets a new random one; the subscriber reads it back from the
 * stored Subscription to verify X-Renkei-Signature.
 */
export async function checkSubscription(caller: Caller, resource: Resource, policyOwner: object, q: Queryable): Promise<void> {
  if (resource.resourceType !== 'Subscription') return;
  const subscription = resource as Subscription;
  const issues: Issue[] = [];
  try {
    parseSubscription({ ...subscription, id: subscription.id ?? 'new' });
  } catch (err) {
    if (!(err instanceof SpecError)) throw err;
    issues.push({ code: 'not-supported', diagnostics: err.message, expression: [err.expression] });
  }
  const problem = subscription.channel?.endpoint && endpointProblem(subscription.channel.endpoint, endpointPolicyFor(policyOwner));
  if (problem) issues.push({ code: 'security', diagnostics: problem, expression: ['Subscription.channel.endpoint'] });
  if (!caller.admin && !caller.organizationId)
    issues.push({ code: 'business-rule', diagnostics: 'A Subscription is made by an Organization client / 機関のクライアントが登録します' });
  const secret = subscription.extension?.find((e) => e.url === EXTENSIONS.secret);
  if (secret && (secret.valueString ?? '').length < MIN_SECRET_LENGTH)
    issues.push({
      code: 'value', expression: ['Subscription.extension'],
      diagnostics: `The signing secret must be at least ${MIN_SECRET_LENGTH} characters / 署名鍵が短すぎます`,
    });
  if (issues.length) throw new FhirError(422, issues);
  if (!secret) await keepSecret(subscription, q);
}

async function keepSecret(subscription: Subscription, q: Queryable): Promise<void> {
  let secret: string | undefined;
  if (subscription.id) {
    const { rows } = await q.query<{ secret: string | null }>(
      `SELECT (SELECT e->>'valueString' FROM jsonb_array_elements(content->'extension') e WHERE e->>'url' = $2 LIMIT 1) AS secret
       FROM resource WHERE resource_type = 'Subscription' AND id = $1 AND NOT deleted`,
      [subscription.id, EXTENSIONS.secret],
    );
    secret = rows[0]?.secret ?? undefined;
  }
  subscription.extension = [
    ...(subscription.extension ?? []),
    { url: EXTENSIONS.secret, valueString: secret ?? randomBytes(32).toString('base64url') },
  ];
}
