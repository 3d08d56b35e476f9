import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import type { Subscription } from '@medplum/fhirtypes';
import client from 'prom-client';
import { WebSocketServer, type WebSocket } from 'ws';
import { log } from '../../logger.js';
import { registry } from '../../metrics.js';
import type { Database } from '../../store/db.js';
import { notificationBundle } from '../notification.js';
import { parseSubscription } from '../spec.js';
import { BINDING_REFRESH_MS, listenToSockets, type SocketMessage } from './channel.js';
import { redeemBindingToken } from './tokens.js';

/** Where clients open their WebSocket (the `websocket-url` of `$get-ws-binding-token`). */
export const WEBSOCKET_PATH = '/websocket';
/** A connection that has not bound a subscription within this time is closed. */
const BIND_WITHIN_MS = 10_000;
/** Announced messages are read within seconds; older ones are deleted. */
const MESSAGE_KEEP_SECONDS = 300;
const BIND = /^bind-with-token\s+(\S+)\s*$/;
const POLICY_VIOLATION = 1008;
const NORMAL = 1000;
const GOING_AWAY = 1001;
const CLOSE_GRACE_MS = 1000;
const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;

const openConnections = new client.Gauge({
  name: 'renkei_websocket_connections',
  help: 'WebSocket connections open on this gateway (bound to a subscription or about to bind)',
  registers: [registry],
});

/** One WebSocket and the subscriptions it is bound to (binding row id by subscription id). */
interface Connection {
  socket: WebSocket;
  bindings: Map<string, string>;
  alive: boolean;
}

/**
 * The gateway's end of the Backport IG's websocket channel. A client opens WEBSOCKET_PATH and sends
 * `bind-with-token <token>` (a token from `$get-ws-binding-token`, used once); the gateway answers with
 * the subscription's handshake Bundle, then sends each of its notifications as the worker announces them
 * (already checked against Consent for the subscriber, numbered, audited), and its heartbeats. One
 * connection may bind several subscriptions. Bindings are rows this gateway keeps fresh, so a worker
 * in another process knows someone listens; a notification sent while nobody is bound is not kept, and
 * the client asks `$events` for the numbers it missed.
 */
export class SocketHub {
  private readonly server = new WebSocketServer({ noServer: true, maxPayload: 4096 });
  private readonly bound = new Map<string, Set<Connection>>();
  private readonly connections = new Set<Connection>();
  private readonly listener: { stop(): Promise<void> };
  private readonly timer: NodeJS.Timeout;
  /** Announced messages are sent one after another, in the order announced. */
  private sending: Promise<void> = Promise.resolve();

  constructor(private readonly db: Database, private readonly fhirBase: () => string | undefined) {
    this.listener = listenToSockets(db, {
      notification: (subscriptionId, message) => {
        if (this.bound.has(subscriptionId)) this.sending = this.sending.then(() => this.forward(subscriptionId, message));
      },
      off: (subscriptionId) => void this.ended(subscriptionId),
    });
    this.timer = setInterval(() => void this.keepFresh(), BINDING_REFRESH_MS);
    this.timer.unref();
  }

  /** Takes the HTTP upgrades of WEBSOCKET_PATH; any other upgrade is refused. */
  attach(server: http.Server): void {
    server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      if (new URL(req.url ?? '/', 'http://gateway').pathname !== WEBSOCKET_PATH) {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
        return;
      }
      this.server.handleUpgrade(req, socket, head, (ws) => this.accept(ws));
    });
  }

  /** Unbinds and closes every connection (cut after CLOSE_GRACE_MS if a client does not answer the close). */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.listener.stop();
    const open = [...this.connections];
    await Promise.all(open.map((c) => this.unbind(c)));
    await Promise.all(open.map(({ socket }) => new Promise<void>((resolve) => {
      const cut = setTimeout(() => socket.terminate(), CLOSE_GRACE_MS);
      socket.once('close', () => (clearTimeout(cut), resolve()));
      socket.close(GOING_AWAY, 'gateway stopping');
    })));
    this.server.close();
  }

  private accept(socket: WebSocket): void {
    const connection: Connection = { socket, bindings: new Map(), alive: true };
    this.connections.add(connection);
    openConnections.inc();
    const deadline = setTimeout(() => {
      if (!connection.bindings.size) refuse(socket, 'No bind-with-token within 10 s / 時間内にバインドされませんでした');
    }, BIND_WITHIN_MS);
    socket.on('pong', () => (connection.alive = true));
    socket.on('message', (data, isBinary) => void this.received(connection, isBinary ? '' : data.toString()));
    socket.on('close', () => {
      clearTimeout(deadline);
      this.connections.delete(connection);
      openConnections.dec();
      void this.unbind(connection);
    });
    socket.on('error', (err) => log.debug({ err: err.message }, 'websocket error'));
  }

  private async received(connection: Connection, text: string): Promise<void> {
    const token = BIND.exec(text)?.[1];
    if (!token) return refuse(connection.socket, 'Send "bind-with-token <token>" / bind-with-tokenを送ってください');
    try {
      const subscriptionIds = await redeemBindingToken(this.db, token);
      if (!subscriptionIds.length) return refuse(connection.socket, 'The token is unknown, used or expired / トークンが無効です');
      for (const subscriptionId of subscriptionIds) {
        const handshake = await this.handshake(subscriptionId);
        if (!handshake) return refuse(connection.socket, `Subscription/${subscriptionId} is gone or off / 購読が見つかりません`);
        await this.bind(connection, subscriptionId);
        connection.socket.send(handshake);
        log.info({ subscription: subscriptionId }, 'websocket bound');
      }
    } catch (err) {
      log.error({ err: (err as Error).message }, 'websocket binding failed');
      refuse(connection.socket, 'The binding failed; try again / バインドに失敗しました', 1011);
    }
  }

  private async bind(connection: Connection, subscriptionId: string): Promise<void> {
    if (connection.bindings.has(subscriptionId)) return;
    const id = randomUUID();
    await this.db.query('INSERT INTO websocket_binding (id, subscription_id) VALUES ($1, $2)', [id, subscriptionId]);
    if (connection.socket.readyState !== connection.socket.OPEN) {
      await this.db.query('DELETE FROM websocket_binding WHERE id = $1', [id]); // closed meanwhile: unbound already
      return;
    }
    connection.bindings.set(subscriptionId, id);
    const connections = this.bound.get(subscriptionId) ?? new Set();
    this.bound.set(subscriptionId, connections.add(connection));
  }

  private async unbind(connection: Connection): Promise<void> {
    const ids = [...connection.bindings.values()];
    for (const subscriptionId of connection.bindings.keys()) {
      const connections = this.bound.get(subscriptionId);
      connections?.delete(connection);
      if (!connections?.size) this.bound.delete(subscriptionId);
    }
    connection.bindings.clear();
    if (ids.length) await this.db.query('DELETE FROM websocket_binding WHERE id = ANY($1::text[])', [ids]).catch(() => {});
  }

  /** A subscription went off or was deleted: its bindings end, and a connection left with none is closed. */
  private async ended(subscriptionId: string): Promise<void> {
    const connections = [...(this.bound.get(subscriptionId) ?? [])];
    this.bound.delete(subscriptionId);
    const ids = connections.map((c) => c.bindings.get(subscriptionId)!);
    for (const connection of connections) {
      connection.bindings.delete(subscriptionId);
      if (!connection.bindings.size) connection.socket.close(NORMAL, `Subscription/${subscriptionId} is off`);
    }
    if (ids.length) await this.db.query('DELETE FROM websocket_binding WHERE id = ANY($1::text[])', [ids]).catch(() => {});
  }

  /** The handshake Bundle of a live subscription, as its status stands. */
  private async handshake(subscriptionId: string): Promise<string | undefined> {
    const { rows } = await this.db.query<{ json: string; status: string | null; events: string | null; last_error: string | null }>(
      `SELECT r.content::text AS json, s.status, s.events, s.last_error FROM resource r LEFT JOIN subscription_state s ON s.id = r.id
       WHERE r.resource_type = 'Subscription' AND r.id = $1 AND NOT r.deleted`, [subscriptionId]);
    if (!rows[0]) return undefined;
    const spec = parseSubscription({ ...(JSON.parse(rows[0].json) as Subscription), id: subscriptionId });
    const status = rows[0].status ?? spec.status;
    if (spec.channel !== 'websocket' || status === 'off') return undefined;
    return JSON.stringify(notificationBundle({
      subscriptionId, topicUrl: spec.topic?.url, status, type: 'handshake', eventsSinceStart: Number(rows[0].events ?? 0),
      error: status === 'error' ? rows[0].last_error : null, events: [], content: spec.content, baseUrl: this.fhirBase(),
    }));
  }

  private async forward(subscriptionId: string, message: SocketMessage): Promise<void> {
    try {
      const body = 'body' in message ? message.body : await this.kept(message.id);
      if (body === undefined) return;
      for (const { socket } of this.bound.get(subscriptionId) ?? []) {
        // A client that does not read is let go rather than buffered for without end; it catches up with $events.
        if (socket.bufferedAmount > MAX_BUFFERED_BYTES) socket.terminate();
        else socket.send(body);
      }
    } catch (err) {
      log.warn({ subscription: subscriptionId, err: (err as Error).message }, 'websocket notification not forwarded');
    }
  }

  /** A notification too large to be announced with its body. */
  private async kept(messageId: string): Promise<string | undefined> {
    const { rows } = await this.db.query<{ body: string }>('SELECT body FROM websocket_message WHERE id = $1', [messageId]);
    return rows[0]?.body;
  }

  /** Pings every connection (one that did not answer the last ping is dropped) and refreshes the bindings. */
  private async keepFresh(): Promise<void> {
    for (const connection of this.connections) {
      if (!connection.alive) connection.socket.terminate();
      connection.alive = false;
      connection.socket.ping();
    }
    const ids = [...this.connections].flatMap((c) => [...c.bindings.values()]);
    try {
      if (ids.length) await this.db.query('UPDATE websocket_binding SET seen_at = now() WHERE id = ANY($1::text[])', [ids]);
      await this.db.query(`DELETE FROM websocket_message WHERE created_at < now() - make_interval(secs => $1)`, [MESSAGE_KEEP_SECONDS]);
      await this.db.query('DELETE FROM websocket_token WHERE expires_at < now()');
      // Bindings of a gateway that stopped without unbinding (they stopped counting after BINDING_FRESH_SECONDS).
      await this.db.query(`DELETE FROM websocket_binding WHERE seen_at < now() - interval '1 hour'`);
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'websocket bindings not refreshed');
    }
  }
}

/** Tells the client why (an OperationOutcome) and closes the connection. */
function refuse(socket: WebSocket, diagnostics: string, code = POLICY_VIOLATION): void {
  socket.send(JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'security', diagnostics }] }));
  socket.close(code, diagnostics.split(' / ')[0].slice(0, 120));
}
