import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Parameters as FhirParameters, Subscription } from '@medplum/fhirtypes';
import { WebSocket } from 'undici';
import { describe, expect, it } from 'vitest';
import type { FhirClient } from '../support/fhir-client.js';
import { consent, medicationRequest, patient } from '../support/resources.js';
import { stackName } from '../support/stack.js';
import { publishToSockets } from '../../src/subscriptions/websocket/channel.js';
import { SocketHub, WEBSOCKET_PATH } from '../../src/subscriptions/websocket/hub.js';
import { issueBindingToken } from '../../src/subscriptions/websocket/tokens.js';
import { adminDeliveries, changesMatched, eventually, statusOf, subscribe, subscriptionSuite, topicSubscription } from './subscriptions.js';

const WIDE = { start: '2020-01-01', end: '2099-12-31' };

/** A topic-based Subscription on the websocket channel. */
function websocketSubscription(topic: string, options: Parameters<typeof topicSubscription>[2] = {}): Subscription {
  const rest = topicSubscription('', topic, options);
  const { endpoint: _endpoint, ...channel } = rest.channel;
  return { ...rest, channel: { ...channel, type: 'websocket' } };
}

/** A client's WebSocket and every text message it received (parsed), in order. */
class SocketClient {
  readonly received: any[] = [];
  closed: { code: number; reason: string } | undefined;

  private constructor(readonly socket: WebSocket) {
    socket.addEventListener('message', (e) => this.received.push(JSON.parse(String(e.data))));
    socket.addEventListener('close', (e) => (this.closed = { code: e.code, reason: e.reason }));
  }

  static async open(url: string): Promise<SocketClient> {
    const socket = new WebSocket(url);
    await new Promise((resolve, reject) => {
      socket.addEventListener('open', resolve);
      socket.addEventListener('error', reject);
    });
    return new SocketClient(socket);
  }

  notifications(type: string): Record<string, any>[] {
    return this.received.filter((m) => m.resourceType === 'Bundle').map(statusOf).filter((s) => s.type.valueCode === type);
  }

  until<T>(check: () => T | undefined | false | 0, what: string): Promise<T> {
    return eventually(async () => check() || undefined, what, 15_000);
  }
}

async function bindingToken(client: FhirClient, subscriptionId: string): Promise<{ token: string; url: string }> {
  const res = await client.get<FhirParameters>(`Subscription/${subscriptionId}/$get-ws-binding-token`);
  expect(res.status).toBe(200);
  const value = (name: string) => res.body.parameter!.find((p) => p.name === name) as unknown as Record<string, string>;
  expect(value('subscription').valueString).toBe(`Subscription/${subscriptionId}`);
  expect(Date.parse(value('expiration').valueDateTime)).toBeGreaterThan(Date.now());
  return { token: value('token').valueString, url: value('websocket-url').valueUrl };
}

const eventNumber = (status: Record<string, any>) => status['notification-event'].part.find((p: any) => p.name === 'event-number').valueString;

describe(`websocket channel, R5 Backport IG (${stackName})`, () => {
  const t = subscriptionSuite({ clinic: 'ws-clinic', facility: 'ws-tokuyo', patient: 'WS-1' });

  it('binds with a token, handshakes, sends the consented notifications and heartbeats (never another patient\'s), lets go when off', async () => {
    expect((await t.clinic.post('Consent', consent(t.patientId, 'ws-clinic', { actors: ['ws-tokuyo'], classes: ['MedicationRequest'], period: WIDE }))).status).toBe(201);
    const hidden = (await t.clinic.post('Patient', patient('WS-2'))).body.id;
    const sub = await subscribe(t.facility, websocketSubscription('medication-change', { content: 'full-resource', heartbeat: 1 }));
    const { token, url } = await bindingToken(t.facility, sub.id!);
    expect(new URL(url).protocol).toBe('ws:');
    const client = await SocketClient.open(url);
    const plans = await subscribe(t.facility, websocketSubscription('careplan-change'));
    const other = await SocketClient.open(url);
    try {
      other.socket.send(`bind-with-token ${(await bindingToken(t.facility, plans.id!)).token}`);
      await other.until(() => other.notifications('handshake').length, 'the other handshake');
      client.socket.send(`bind-with-token ${token}`);
      const [handshake] = await client.until(() => client.notifications('handshake').length && client.notifications('handshake'), 'the handshake');
      expect([handshake.status.valueCode, handshake['events-since-subscription-start'].valueString]).toEqual(['active', '0']);
      expect(handshake.subscription.valueReference.reference).toMatch(new RegExp(`Subscription/${sub.id}$`));

      const withoutConsent = (await t.clinic.post('MedicationRequest', medicationRequest(hidden, 'WS-RX-0'))).body;
      await changesMatched(t.stack, [withoutConsent.id]);
      const shared = (await t.clinic.post('MedicationRequest', medicationRequest(t.patientId, 'WS-RX-1'))).body;
      const [event] = await client.until(() => client.notifications('event-notification').length && client.notifications('event-notification'), 'the notification');
      expect(eventNumber(event)).toBe('1');
      const bundle = client.received.find((m) => m.resourceType === 'Bundle' && statusOf(m).type.valueCode === 'event-notification');
      expect(bundle.entry[1].resource).toMatchObject({ resourceType: 'MedicationRequest', id: shared.id, subject: { reference: `Patient/${t.patientId}` } });
      expect(JSON.stringify(client.received)).not.toContain(withoutConsent.id);
      await client.until(() => client.notifications('heartbeat').length, 'a heartbeat');
      expect(other.received).toHaveLength(1); // its own handshake: nothing of the other subscription

      const delivered = (await adminDeliveries(t.stack, `subscription=${sub.id}`)).deliveries.filter((d) => d.kind === 'event');
      expect(delivered.map((d) => d.status)).toEqual(['delivered']);
      expect(await (await fetch(`${t.stack.url}/metrics`)).text()).toMatch(/^renkei_websocket_connections 2$/m);

      // Turned off by the client: the connection bound only to it is let go, the other stays.
      const current = (await t.facility.get<Subscription>(`Subscription/${sub.id}`)).body;
      expect((await t.facility.put(`Subscription/${sub.id}`, { ...current, status: 'off' })).status).toBe(200);
      expect((await client.until(() => client.closed, 'the connection to close')).code).toBe(1000);
      expect(other.closed).toBeUndefined();

      const audit = await t.stack.gateway.services.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM audit_event WHERE action = 'notification' AND agent_org = $1 AND content::text LIKE $2`,
        ['ws-tokuyo', `%MedicationRequest/${shared.id}%`]);
      expect(audit.rows[0].n).toBe(1);
    } finally {
      client.socket.close();
      other.socket.close();
    }
  });

  it('binds several subscriptions with one token; refuses a used token, another message and a token for someone else\'s or a rest-hook subscription', async () => {
    const sub = await subscribe(t.facility, websocketSubscription('careplan-change'));
    const { token, url } = await bindingToken(t.facility, sub.id!);
    const first = await SocketClient.open(url);
    first.socket.send(`bind-with-token ${token}`);
    await first.until(() => first.notifications('handshake').length, 'the handshake');
    first.socket.close();

    const again = await SocketClient.open(url);
    again.socket.send(`bind-with-token ${token}`);
    await again.until(() => again.closed, 'the refusal');
    expect(again.closed!.code).toBe(1008);
    expect(again.received[0]).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'security' }] });

    const chatty = await SocketClient.open(url);
    chatty.socket.send('hello');
    await chatty.until(() => chatty.closed, 'the refusal');
    expect(chatty.closed!.code).toBe(1008);

    const second = await subscribe(t.facility, websocketSubscription('urgent-communication'));
    const both = await t.facility.get<FhirParameters>(`Subscription/$get-ws-binding-token?id=${sub.id},${second.id}&id=${sub.id}`);
    expect(both.body.parameter!.filter((p) => p.name === 'subscription').map((p) => p.valueString)).toEqual([`Subscription/${sub.id}`, `Subscription/${second.id}`]);
    const twice = await SocketClient.open(url);
    twice.socket.send(`bind-with-token ${both.body.parameter!.find((p) => p.name === 'token')!.valueString}`);
    const handshakes = await twice.until(() => twice.notifications('handshake').length === 2 && twice.notifications('handshake'), 'two handshakes');
    expect(handshakes.map((h) => h.subscription.valueReference.reference.split('/').pop()).sort()).toEqual([sub.id, second.id].sort());
    twice.socket.close();

    expect((await t.clinic.get(`Subscription/${sub.id}/$get-ws-binding-token`)).status).toBe(404);
    expect((await t.clinic.get(`Subscription/$get-ws-binding-token?id=${sub.id}`)).status).toBe(404);
    expect((await t.facility.get('Subscription/$get-ws-binding-token')).status).toBe(400);
    const restHook = await subscribe(t.facility, topicSubscription(t.receiver.url, 'careplan-change'));
    const refused = await t.facility.get(`Subscription/${restHook.id}/$get-ws-binding-token`);
    expect(refused.status).toBe(400);
    expect(refused.body.resourceType).toBe('OperationOutcome');
    const criteria = await t.facility.post('Subscription', {
      resourceType: 'Subscription', status: 'requested', reason: 'r', criteria: 'MedicationRequest?status=active', channel: { type: 'websocket' },
    });
    expect(criteria.status).toBe(422);
    expect(criteria.body.resourceType).toBe('OperationOutcome');
  });

  it('does not keep what it could not send while no client was bound: $events returns it', async () => {
    const sub = await subscribe(t.clinic, websocketSubscription('medication-change', { content: 'full-resource' }));
    const med = (await t.clinic.post('MedicationRequest', medicationRequest(t.patientId, 'WS-RX-2'))).body;
    const [cancelled] = await eventually(async () => {
      const rows = (await adminDeliveries(t.stack, `subscription=${sub.id}`)).deliveries.filter((d) => d.kind === 'event' && d.status !== 'pending');
      return rows.length ? rows : undefined;
    }, 'the event settled');
    expect(cancelled.status).toBe('cancelled');
    expect(cancelled.lastError).toContain('No client was bound');
    const events = await t.clinic.get<any>(`Subscription/${sub.id}/$events`);
    expect(events.status).toBe(200);
    expect(eventNumber(statusOf(events.body))).toBe('1');
    expect(events.body.entry[1].resource).toMatchObject({ resourceType: 'MedicationRequest', id: med.id });
  });
});

describe(`websocket bindings (${stackName})`, () => {
  const t = subscriptionSuite({ clinic: 'ws-bindings', patient: 'WS-3' });

  it('counts a binding only while its gateway refreshes it: one silent for 90 s is gone and nothing is kept for it', async () => {
    const { db } = t.stack.gateway.services;
    const kept = async () => (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM websocket_message WHERE subscription_id = $1', ['s-1'])).rows[0].n;
    const large = JSON.stringify({ note: '連携'.repeat(3000) }); // too large to travel in the announcement
    await db.query(`INSERT INTO websocket_binding (id, subscription_id, seen_at) VALUES ('b-1', 's-1', now() - interval '91 seconds')`);
    expect(await publishToSockets(db, 's-1', '{}')).toBe(false);
    expect(await publishToSockets(db, 's-1', large)).toBe(false);
    expect(await kept()).toBe(0);
    await db.query(`UPDATE websocket_binding SET seen_at = now() - interval '80 seconds' WHERE id = 'b-1'`);
    expect(await publishToSockets(db, 's-1', '{"n":1}')).toBe(true);
    expect(await publishToSockets(db, 's-1', large)).toBe(true);
    expect(await kept()).toBe(db.embedded ? 0 : 1); // the embedded store hands bodies over in the process
    await db.query(`DELETE FROM websocket_binding WHERE id = 'b-1'`);
  });

  it('sends a notification too large to announce whole; unbinds its clients when the gateway stops (1001), leaving no binding', async () => {
    const { db } = t.stack.gateway.services;
    const sub = await subscribe(t.clinic, websocketSubscription('careplan-change'));
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const hub = new SocketHub(db, () => undefined);
    hub.attach(server);
    const bindings = async () => (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM websocket_binding WHERE subscription_id = $1', [sub.id])).rows[0].n;
    try {
      const client = await SocketClient.open(`ws://127.0.0.1:${(server.address() as AddressInfo).port}${WEBSOCKET_PATH}`);
      client.socket.send(`bind-with-token ${(await issueBindingToken(db, [sub.id!])).token}`);
      await client.until(() => client.notifications('handshake').length, 'the handshake');
      expect(await bindings()).toBe(1);
      const elsewhere = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}/fhir`);
      await new Promise((resolve) => elsewhere.addEventListener('error', resolve)); // an upgrade of another path is refused
      const large = { resourceType: 'Bundle', type: 'history', note: '医療・介護連携　ｶﾅ '.repeat(800) };
      expect(await publishToSockets(db, sub.id!, JSON.stringify(large))).toBe(true);
      expect(await client.until(() => client.received.find((m) => m.note), 'the large message')).toEqual(large);
      await hub.close();
      expect((await client.until(() => client.closed, 'the close')).code).toBe(1001);
      expect(await bindings()).toBe(0);
      expect(await publishToSockets(db, sub.id!, '{}')).toBe(false);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
