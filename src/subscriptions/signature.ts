import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Every notification is signed: `X-Renkei-Signature: sha256=<hex>` is the HMAC-SHA256 of the exact
 * request body (empty for a body-less notification) under the Subscription's secret (extension
 * http://renkei.jp/fhir/StructureDefinition/subscription-secret). `X-Renkei-Idempotency-Key` is the same
 * for every attempt of one notification, so a receiver drops what it has already applied.
 */
export const SIGNATURE_HEADER = 'X-Renkei-Signature';
export const IDEMPOTENCY_HEADER = 'X-Renkei-Idempotency-Key';
export const SUBSCRIPTION_HEADER = 'X-Renkei-Subscription';
export const EVENT_NUMBER_HEADER = 'X-Renkei-Event-Number';

export function sign(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body, 'utf8').digest('hex')}`;
}

/** What a receiver does: recompute and compare in constant time. */
export function verifySignature(secret: string, body: string | Buffer, header: string | undefined): boolean {
  if (!header?.startsWith('sha256=')) return false;
  const expected = Buffer.from(createHmac('sha256', secret).update(body).digest('hex'));
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
