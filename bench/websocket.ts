/**
 * Change → received over the WebSocket channel: a topic-based subscription (medication changes, full
 * resource) bound through `$get-ws-binding-token`, and MedicationRequests created at a steady rate; each
 * latency runs from the create's start to the notification's arrival at the client.
 */
import type { Parameters, Subscription } from '@medplum/fhirtypes';
import { WebSocket } from 'undici';
import { medicationRequest } from '../test/support/resources.js';
import type { BenchClient } from './workload.js';

const BACKPORT = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition';

const websocketSubscription = (): Subscription => ({
  resourceType: 'Subscription',
  meta: { profile: [`${BACKPORT}/backport-subscription`] },
  status: 'requested',
  reason: 'bench',
  criteria: 'http://renkei.jp/fhir/SubscriptionTopic/medication-change',
  channel: {
    type: 'websocket',
    payload: 'application/fhir+json',
    _payload: { extension: [{ url: `${BACKPORT}/backport-payload-content`, valueCode: 'full-resource' }] },
  } as Subscription['channel'],
});

/** A bound WebSocket: the arrival time of each notified resource id. */
async function bind(client: BenchClient, subscriptionId: string): Promise<{ arrivals: Map<string, number>; close(): void }> {
  const answer = (await client.get(`Subscription/${subscriptionId}/$get-ws-binding-token`)) as Parameters;
  const value = (name: string) => answer.parameter!.find((p) => p.name === name)!;
  const socket = new WebSocket(value('websocket-url').valueUrl!);
  const arrivals = new Map<string, number>();
  let bound: () => void = () => {};
  const handshake = new Promise<void>((resolve) => (bound = resolve));
  socket.addEventListener('message', (e) => {
    const at = performance.now();
    const bundle = JSON.parse(String(e.data));
    const resource = bundle.entry?.[1]?.resource;
    if (resource?.id) arrivals.set(resource.id, at);
    else bound();
  });
  await new Promise((resolve, reject) => {
    socket.addEventListener('open', resolve);
    socket.addEventListener('error', reject);
  });
  socket.send(`bind-with-token ${value('token').valueString}`);
  await handshake;
  return { arrivals, close: () => socket.close() };
}

async function until(check: () => boolean, what: string, ms = 120_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Latencies (ms) of `n` MedicationRequests created at `rate` per second, after a warm-up of `warmUp`. */
export async function websocketLatency(client: BenchClient, patients: string[], n: number, rate: number, warmUp: number): Promise<number[]> {
  const subscription = await client.create(websocketSubscription());
  for (let i = 0; (await client.get(`Subscription/${subscription}`)).status !== 'active'; i++) {
    if (i > 600) throw new Error('the websocket subscription did not become active');
    await new Promise((r) => setTimeout(r, 100));
  }
  const socket = await bind(client, subscription);
  try {
    const send = async (count: number, offset: number) => {
      const started: number[] = [];
      const ids: Promise<string>[] = [];
      const t0 = performance.now();
      for (let i = 0; i < count; i++) {
        const wait = t0 + (i * 1000) / rate - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        started.push(performance.now());
        ids.push(client.create(medicationRequest(patients[i % patients.length], `WS-${offset + i}`)));
      }
      const created = await Promise.all(ids);
      await until(() => created.every((id) => socket.arrivals.has(id)), `${count} WebSocket notifications`);
      return created.map((id, i) => socket.arrivals.get(id)! - started[i]);
    };
    await send(warmUp, 0);
    return await send(n, warmUp);
  } finally {
    socket.close();
  }
}
