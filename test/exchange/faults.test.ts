import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { organizationClient } from '../support/fhir-client.js';
import { medicationRequest, patient } from '../support/resources.js';
import { stackName, startTestStack } from '../support/stack.js';
import { Receiver } from '../subscriptions/receiver.js';
import { adminDeliveries, criteriaSubscription, DELIVERING, eventually, subscribe } from '../subscriptions/subscriptions.js';
import { freshStore, RenkeiProcess } from './processes.js';
import { TcpProxy } from './tcp-proxy.js';

const servers = stackName === 'servers';
const keys = (receiver: Receiver) => receiver.requests.map((r) => r.headers['x-renkei-idempotency-key']);

describe(`faults: crashed processes (${stackName})`, () => {
  let receiver: Receiver;
  let store: Awaited<ReturnType<typeof freshStore>>;
  const running: RenkeiProcess[] = [];
  const start = async (command: 'serve' | 'worker', env: Record<string, string>) => {
    const proc = await RenkeiProcess.start(command, { ...store.env, RENKEI_QUEUE_LOCK_MS: '2000', ...env });
    running.push(proc);
    return proc;
  };

  beforeEach(async () => {
    receiver = await Receiver.start();
    store = await freshStore();
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((p) => p.stop()));
    await receiver.close();
    await store.cleanup();
  });

  it('completes a delivery after the worker is killed in the middle of it, with the same idempotency key', async () => {
    // Servers: an API process and a worker process; embedded: serve runs the workers, so it is the one killed.
    const api = await start('serve', { RENKEI_WORKERS: servers ? 'off' : 'on' });
    const worker = servers ? await start('worker', {}) : api;
    const clinic = await organizationClient(api.stack!, 'fault-clinic');
    const patientId = (await clinic.post('Patient', patient('FAULT-1'))).body.id;
    await subscribe(clinic, criteriaSubscription(receiver.url, `MedicationRequest?patient=Patient/${patientId}`));
    let answer: () => void = () => {};
    const answered = new Promise<void>((resolve) => (answer = resolve));
    receiver.answerWith(async (_req, i) => {
      if (i === 0) await answered; // the receiver applies it, but its answer comes too late for the killed worker
      return 200;
    });
    await clinic.post('MedicationRequest', medicationRequest(patientId, 'FAULT-RX-1'));
    await receiver.waitUntil(() => receiver.requests.length === 1);
    await worker.crash();
    answer();
    const restarted = await start(servers ? 'worker' : 'serve', {});
    await receiver.waitUntil(() => receiver.requests.length === 2, 60_000, 'the delivery to be sent again');
    expect(new Set(keys(receiver)).size).toBe(1);
    expect(receiver.applied).toHaveLength(1);
    const admin = servers ? api.stack! : restarted.stack!;
    await eventually(async () => (await adminDeliveries(admin, 'status=delivered')).total === 1, 'the delivery to be settled', 30_000);
    if (servers) {
      // A worker answers health checks and exposes the delivery metrics that only workers count.
      expect(await (await fetch(`${restarted.operationsUrl}/readyz`)).json()).toEqual({ store: 'ok', queue: 'ok' });
      const metrics = await (await fetch(`${restarted.operationsUrl}/metrics`)).text();
      expect(metrics).toMatch(/renkei_deliveries_total\{[^}]*\} 1/);
    }
  }, 120_000);

  it('sends a change committed just before the gateway died: the relay picks it up after the restart', async () => {
    const workers = { RENKEI_WORKERS: 'on' };
    const first = await start('serve', workers);
    const clinic = await organizationClient(first.stack!, 'fault-clinic2');
    const patientId = (await clinic.post('Patient', patient('FAULT-2'))).body.id;
    await subscribe(clinic, criteriaSubscription(receiver.url, `MedicationRequest?patient=Patient/${patientId}`));
    await first.stop();

    // This gateway commits but never enqueues (no relay), then dies.
    const dying = await start('serve', { ...workers, RENKEI_RELAY: 'off' });
    const med = await organizationClient(dying.stack!, 'fault-clinic2').then((c) => c.post('MedicationRequest', medicationRequest(patientId, 'FAULT-RX-2')));
    expect(med.status).toBe(201);
    expect((await adminDeliveries(dying.stack!)).total).toBe(0);
    await dying.crash();
    expect(receiver.requests).toEqual([]);

    const restarted = await start('serve', workers);
    await receiver.waitUntil(() => receiver.applied.length === 1, 30_000);
    expect(receiver.applied[0].path).toBe(`/MedicationRequest/${med.body.id}`);
    await eventually(async () => (await adminDeliveries(restarted.stack!, 'status=delivered')).total === 1, 'the delivery to be settled');
  }, 120_000);
});

describe.runIf(servers)('faults: Redis away for 30 s (servers)', () => {
  it('keeps committing writes while Redis is away, and delivers every notification once in effect when it returns', async () => {
    const redis = new URL(process.env.REDIS_URL!);
    const proxy = await TcpProxy.start(redis.hostname, Number(redis.port || 6379));
    const stack = await startTestStack({ ...DELIVERING, REDIS_URL: `redis://127.0.0.1:${proxy.port}`, RENKEI_QUEUE_LOCK_MS: '5000' });
    const receiver = await Receiver.start();
    try {
      const clinic = await organizationClient(stack, 'outage-clinic');
      const patients = await Promise.all(['OUT-1', 'OUT-2', 'OUT-3'].map(async (p) => (await clinic.post('Patient', patient(p))).body.id as string));
      await subscribe(clinic, criteriaSubscription(receiver.url, 'MedicationRequest'));
      const written: { status: number; id: string }[] = [];
      let writing = true;
      const writer = (async () => {
        for (let i = 0; writing; i++) {
          const res = await clinic.post('MedicationRequest', medicationRequest(patients[i % 3], `OUT-RX-${i}`));
          written.push({ status: res.status, id: res.body?.id });
          await new Promise((r) => setTimeout(r, 200));
        }
      })();
      const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
      await pause(3000);
      proxy.interrupt();
      const duringOutage = written.length;
      await pause(5000);
      const ready = await fetch(`${stack.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({ store: 'ok', queue: expect.stringContaining('unreachable') });
      await pause(25_000);
      proxy.restore();
      await pause(3000);
      writing = false;
      await writer;

      expect(written.length - duringOutage).toBeGreaterThan(50);
      expect(written.filter((w) => w.status !== 201)).toEqual([]);
      const ids = written.map((w) => w.id);
      await receiver.waitUntil(() => receiver.applied.length === ids.length, 90_000, `${ids.length} notifications`);
      expect(receiver.applied.map((r) => r.path.split('/').pop()).sort()).toEqual([...ids].sort());
      await eventually(async () => (await adminDeliveries(stack, 'status=delivered&_count=0')).total === ids.length, 'every delivery settled');
      expect((await adminDeliveries(stack, 'status=pending&_count=0')).total).toBe(0);
    } finally {
      await receiver.close();
      await stack.stop();
      await proxy.close();
    }
  }, 180_000);
});
