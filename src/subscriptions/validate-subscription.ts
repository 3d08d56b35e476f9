import { randomBytes } from 'node:crypto';
import type { Extension, Resource, Subscription } from '@medplum/fhirtypes';
import type { Caller } from '../fhir/caller.js';
import { FhirError, type Issue } from '../fhir/outcome.js';
import { DEFAULT_PURPOSE } from '../store/access.js';
import type { Queryable } from '../store/db.js';
import { endpointPolicyFor, endpointProblem } from './endpoint-policy.js';
import { EXTENSIONS, MIN_SECRET_LENGTH, parseSubscription, SpecError } from './spec.js';

/** Purposes a Subscription may be decided for: never break-glass (ETREAT needs a person and a reason). */
const REFUSED_PURPOSES = ['ETREAT'];

/**
 * What a Subscription must be before it is stored (called by FhirService for every create and update):
 * a channel, criteria or topic, payload and headers the gateway can serve, an endpoint the SSRF policy
 * allows, belonging to an Organization's client (notifications are checked against that Organization's
 * Consents, for the purpose of use the Subscription declares). Anything else answers 422.
 *
 * It also keeps the signing secret: a Subscription written without the secret extension keeps the
 * secret of its current version, or gets a new random one; the subscriber reads it back from the
 * stored Subscription to verify X-Renkei-Signature. A client's Subscription without the purpose-of-use
 * extension gets the purpose of the request that wrote it (X-Purpose-Of-Use, TREAT by default).
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
  const current = await currentOf(subscription.id, q);
  if (!caller.organizationId && !current?.owner)
    issues.push({
      code: 'business-rule', expression: ['Subscription'],
      diagnostics: "A subscription must belong to an organization's client: write it with that client's token / 通知の登録は機関のクライアントが行います",
    });
  const purposeProblem = checkPurpose(caller, subscription);
  if (purposeProblem) issues.push({ code: 'business-rule', diagnostics: purposeProblem, expression: ['Subscription.extension'] });
  const secret = subscription.extension?.find((e) => e.url === EXTENSIONS.secret);
  if (secret && (secret.valueString ?? '').length < MIN_SECRET_LENGTH)
    issues.push({
      code: 'value', expression: ['Subscription.extension'],
      diagnostics: `The signing secret must be at least ${MIN_SECRET_LENGTH} characters / 署名鍵が短すぎます`,
    });
  if (issues.length) throw new FhirError(422, issues);
  if (!secret) addExtension(subscription, { url: EXTENSIONS.secret, valueString: current?.secret ?? randomBytes(32).toString('base64url') });
  if (!purposeOf(subscription)) {
    const purpose = caller.admin ? (current?.purpose ?? DEFAULT_PURPOSE) : (caller.purposeOfUse ?? DEFAULT_PURPOSE);
    addExtension(subscription, { url: EXTENSIONS.purpose, valueCode: purpose });
  }
}

const purposeOf = (subscription: Subscription) => subscription.extension?.find((e) => e.url === EXTENSIONS.purpose)?.valueCode;

/** A client's Subscription declares the purpose its request is made for; the administrator keeps what is there. */
function checkPurpose(caller: Caller, subscription: Subscription): string | undefined {
  const declared = purposeOf(subscription);
  const requested = caller.admin ? undefined : (caller.purposeOfUse ?? DEFAULT_PURPOSE);
  if (REFUSED_PURPOSES.includes(declared ?? requested ?? ''))
    return 'Notifications are never sent for emergency access (ETREAT) / 緊急アクセスでは通知を登録できません';
  if (declared && requested && declared !== requested)
    return `The Subscription declares purpose of use ${declared} but the request is made for ${requested}; send X-Purpose-Of-Use: ${declared} / 利用目的が一致しません`;
  return undefined;
}

function addExtension(subscription: Subscription, extension: Extension): void {
  subscription.extension = [...(subscription.extension ?? []), extension];
}

/** What the stored version holds: its owner, signing secret and purpose of use. */
async function currentOf(id: string | undefined, q: Queryable): Promise<{ owner: string | null; secret?: string; purpose?: string } | undefined> {
  if (!id) return undefined;
  const { rows } = await q.query<{ owner: string | null; secret: string | null; purpose: string | null }>(
    `SELECT owner,
       (SELECT e->>'valueString' FROM jsonb_array_elements(content->'extension') e WHERE e->>'url' = $2 LIMIT 1) AS secret,
       (SELECT e->>'valueCode' FROM jsonb_array_elements(content->'extension') e WHERE e->>'url' = $3 LIMIT 1) AS purpose
     FROM resource WHERE resource_type = 'Subscription' AND id = $1 AND NOT deleted`,
    [id, EXTENSIONS.secret, EXTENSIONS.purpose],
  );
  const row = rows[0];
  return row && { owner: row.owner, secret: row.secret ?? undefined, purpose: row.purpose ?? undefined };
}
