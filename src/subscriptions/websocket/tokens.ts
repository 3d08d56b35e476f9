import { createHash, randomBytes } from 'node:crypto';
import type { Queryable } from '../../store/db.js';

/** How long a binding token may wait for its WebSocket (the Backport IG leaves it to the server). */
export const BINDING_TOKEN_TTL_MS = 5 * 60_000;

const hashOf = (token: string) => createHash('sha256').update(token).digest('hex');

/** A token binding one WebSocket to the subscriptions given; the store keeps only its hash. */
export async function issueBindingToken(db: Queryable, subscriptionIds: string[], now = new Date()): Promise<{ token: string; expiresAt: Date }> {
  const token = randomBytes(32).toString('base64url');
  const expiresAt = new Date(now.getTime() + BINDING_TOKEN_TTL_MS);
  await db.query('INSERT INTO websocket_token (token_hash, subscription_id, expires_at) SELECT $1, unnest($2::text[]), $3',
    [hashOf(token), subscriptionIds, expiresAt]);
  return { token, expiresAt };
}

/** Uses a token up: the subscriptions it binds (none if it is unknown, used or expired). */
export async function redeemBindingToken(db: Queryable, token: string): Promise<string[]> {
  const { rows } = await db.query<{ subscription_id: string; live: boolean }>(
    'DELETE FROM websocket_token WHERE token_hash = $1 RETURNING subscription_id, expires_at > now() AS live', [hashOf(token)]);
  return rows.filter((r) => r.live).map((r) => r.subscription_id);
}
