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

/** A notification's body up to this size travels in the announcement (PostgreSQL allows 8,000 bytes). */
const INLINE_BYTES = 7000;
const LIVE = `websocket_binding WHERE subscription_id = $1 AND seen_at > now() - make_interval(secs => ${BINDING_FRESH_SECONDS})`;

/**
 * Hands a notification to the WebSockets bound to a subscription, wherever their gateway runs, only while
 * a binding is fresh, in one statement: announced on WEBSOCKET_CHANNEL with its body (`<subscription id>
 * =<body>`), or, when larger, kept briefly in websocket_message and announced by its id. False when no
 * client is bound (nothing is kept): a websocket client that was away catches up with `$events`.
 */
export async function publishToSockets(db: Database, subscriptionId: string, body: string): Promise<boolean> {
  if (db.embedded) {
    const { rows } = await db.query(`SELECT 1 FROM ${LIVE} LIMIT 1`, [subscriptionId]);
    if (rows.length) inProcess.emit('message', subscriptionId, { body });
    return rows.length > 0;
  }
  const { rows } = Buffer.byteLength(body) <= INLINE_BYTES
    ? await db.query(`SELECT pg_notify('${WEBSOCKET_CHANNEL}', $1 || ' =' || $2) FROM ${LIVE} LIMIT 1`, [subscriptionId, body])
    : await db.query(`WITH kept AS (INSERT INTO websocket_message (subscription_id, body) SELECT $1, $2 WHERE EXISTS (SELECT 1 FROM ${LIVE})
          RETURNING id)
        SELECT pg_notify('${WEBSOCKET_CHANNEL}', $1 || ' ' || id) FROM kept`, [subscriptionId, body]);
  return rows.length > 0;
}

/** Tells the gateways that a subscription is off or deleted: the clients bound to it are let go. */
export async function announceSubscriptionOff(db: Database, subscriptionId: string): Promise<void> {
  if (db.embedded) inProcess.emit('message', subscriptionId, OFF);
  else await db.query(`SELECT pg_notify('${WEBSOCKET_CHANNEL}', $1 || ' off')`, [subscriptionId]);
}

const OFF = 'off';

/** A notification for bound clients: its body, or the id of the websocket_message holding it. */
export type SocketMessage = { body: string } | { id: string };

export interface SocketAnnouncements {
  notification(subscriptionId: string, message: SocketMessage): void;
  off(subscriptionId: string): void;
}

/** Passes each announcement on to `to` until stopped. */
export function listenToSockets(db: Database, to: SocketAnnouncements): { stop(): Promise<void> } {
  const received = (subscriptionId: string, what: SocketMessage | typeof OFF) =>
    (what === OFF ? to.off(subscriptionId) : to.notification(subscriptionId, what));
  if (db.embedded) {
    inProcess.on('message', received);
    return { stop: async () => void inProcess.off('message', received) };
  }
  const listener = new ChannelListener(db.url, WEBSOCKET_CHANNEL, (payload) => {
    if (payload === undefined) return; // (re)connected: what was announced meanwhile is for $events
    const space = payload.indexOf(' ');
    const [subscriptionId, rest] = [payload.slice(0, space), payload.slice(space + 1)];
    if (space <= 0 || !rest) return void log.warn({ channel: WEBSOCKET_CHANNEL }, 'unreadable websocket announcement');
    received(subscriptionId, rest === OFF ? OFF : rest.startsWith('=') ? { body: rest.slice(1) } : { id: rest });
  });
  listener.start();
  return listener;
}
