import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Every notification is signed: `X-Renkei-Signature: sha256=<hex>` is the HMAC-SHA256, under the
 * Subscription's secret (extension http://renkei.jp/fhir/StructureDefinition/subscription-secret), of
 * `<X-Renkei-Timestamp>.<X-Renkei-Idempotency-Key>.<exact body>` (the body is empty for a body-less
 * notification). The timestamp (Unix seconds of the attempt) lets a receiver refuse a replayed request,
 * and the key binds a body-less signature to one notification. The key is the same for every attempt of
 * one notification, so a receiver drops what it has already applied.
 */
export const SIGNATURE_HEADER = 'X-Renkei-Signature';
export const TIMESTAMP_HEADER = 'X-Renkei-Timestamp';
export const IDEMPOTENCY_HEADER = 'X-Renkei-Idempotency-Key';
export const SUBSCRIPTION_HEADER = 'X-Renkei-Subscription';
export const EVENT_NUMBER_HEADER = 'X-Renkei-Event-Number';

/** What is signed: the timestamp, the idempotency key and the body. */
export interface SignedParts {
  timestamp: string;
  idempotencyKey: string;
  body: string | Buffer;
}

function hmac(secret: string, { timestamp, idempotencyKey, body }: SignedParts): string {
  return createHmac('sha256', secret).update(`${timestamp}.${idempotencyKey}.`, 'utf8').update(body).digest('hex');
}

export function sign(secret: string, parts: SignedParts): string {
  return `sha256=${hmac(secret, parts)}`;
}

/**
 * What a receiver does: refuse a timestamp further than `toleranceSeconds` from its clock, recompute
 * and compare in constant time.
 */
export function verifySignature(secret: string, parts: SignedParts, header: string | undefined, toleranceSeconds = 300, now = Date.now()): boolean {
  if (!header?.startsWith('sha256=') || !/^\d{1,12}$/.test(parts.timestamp)) return false;
  if (Math.abs(now / 1000 - Number(parts.timestamp)) > toleranceSeconds) return false;
  const expected = Buffer.from(hmac(secret, parts));
  const given = Buffer.from(header.slice('sha256='.length));
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** One key per subscription and resource version (events), or per handshake / heartbeat row. */
export function idempotencyKey(d: {
  subscriptionId: string; kind: string; id: number; resourceType?: string | null; resourceId?: string | null; versionId?: number | null;
}): string {
  if (d.kind === 'event') return `Subscription/${d.subscriptionId}/${d.resourceType}/${d.resourceId}/_history/${d.versionId}`;
  return `Subscription/${d.subscriptionId}/${d.kind}/${d.id}`;
}
