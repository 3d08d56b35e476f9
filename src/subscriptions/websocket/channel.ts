import { EventEmitter } from 'node:events';
import { log } from '../../logger.js';
import { ChannelListener } from '../../store/channel-listener.js';
import type { Database } from '../../store/db.js';

/**
 * The PostgreSQL channel announcing to the gateways what their bound WebSockets get: `<subscription id>
 * <message id>` a notification to send, `<subscription id> off` the subscription's end (its bindings close).
 */
export const WEBSOCKET_CHANNEL = 'renkei_websocket';
/** A gateway refreshes its bindings this often; one not refreshed for BINDING_FRESH_SECONDS is gone. */
export const BINDING_REFRESH_MS = 30_000;
export const BINDING_FRESH_SECONDS = 90;

/**
 * The embedded store runs the workers inside the gateway process (and its connections share one session,
 * where LISTEN does not reach another connection): announcements stay in the process.
 */
const inProcess = new EventEmitter().setMaxListeners(0);

/**
 * Hands a notification to the WebSockets bound to a subscription, wherever their gateway runs: kept
 * briefly in websocket_message and announced on WEBSOCKET_CHANNEL in one statement, only while a binding
 * is fresh. False when no client is bound (nothing is kept): a websocket client that was away catches up
 * with `$events`.
 */
export async function publishToSockets(db: Database, subscriptionId: string, body: string): Promise<boolean> {
  const { rows } = await db.query<{ id: string }>(
    `WITH live AS (SELECT 1 FROM websocket_binding WHERE subscription_id = $1 AND seen_at > now() - make_interval(secs => $3) LIMIT 1),
       kept AS (INSERT INTO websocket_message (subscription_id, body) SELECT $1, $2 FROM live RETURNING id)
     SELECT id::text AS id, pg_notify('${WEBSOCKET_CHANNEL}', $1 || ' ' || id) FROM kept`,
    [subscriptionId, body, BINDING_FRESH_SECONDS]);
  if (!rows.length) return false;
  if (db.embedded) inProcess.emit('message', subscriptionId, rows[0].id);
  return true;
}

/** Tells the gateways that a subscription is off or deleted: the clients bound to it are let go. */
export async function announceSubscriptionOff(db: Database, subscriptionId: string): Promise<void> {
  await db.query(`SELECT pg_notify('${WEBSOCKET_CHANNEL}', $1 || ' ${OFF}')`, [subscriptionId]);
  if (db.embedded) inProcess.emit('message', subscriptionId, OFF);
}

const OFF = 'off';

export interface SocketAnnouncements {
  notification(subscriptionId: string, messageId: string): void;
  off(subscriptionId: string): void;
}

/** Passes each announcement on to `to` until stopped. */
export function listenToSockets(db: Database, to: SocketAnnouncements): { stop(): Promise<void> } {
  const received = (subscriptionId: string, what: string) => (what === OFF ? to.off(subscriptionId) : to.notification(subscriptionId, what));
  if (db.embedded) {
    inProcess.on('message', received);
    return { stop: async () => void inProcess.off('message', received) };
  }
  const listener = new ChannelListener(db.url, WEBSOCKET_CHANNEL, (payload) => {
    if (payload === undefined) return; // (re)connected: what was announced meanwhile is for $events
    const [subscriptionId, messageId] = payload.split(' ');
    if (subscriptionId && messageId) received(subscriptionId, messageId);
    else log.warn({ channel: WEBSOCKET_CHANNEL }, 'unreadable websocket announcement');
  });
  listener.start();
  return listener;
}
