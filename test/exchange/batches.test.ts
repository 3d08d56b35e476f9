import { UnrecoverableError } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batchJobId, deliveryJobId, recordMatches, wokenBatchJobId, type Change, type DeliveryJobRef } from '../../src/exchange/deliveries.js';
import { DELIVERIES_QUEUE } from '../../src/exchange/queues.js';
import { Reconciler } from '../../src/exchange/reconciler.js';
import { DELIVERY_BATCH_JOB, type DeliveryBatchData } from '../../src/subscriptions/deliver.js';
import { organizationClient, type FhirClient } from '../support/fhir-client.js';
import { bodyTemperature, patient } from '../support/resources.js';
import { stackName, startTestStack, type TestStack } from '../support/stack.js';
import { Receiver } from '../subscriptions/receiver.js';
import { criteriaSubscription, DELIVERING, eventually, subscribe } from '../subscriptions/subscriptions.js';

interface DeliveryFacts {
  id: number;
  subscription_id: string;
  change_seq: number;
  generation: number;
  attempts: number;
  status: string;
}

const deliveriesOf = async (stack: TestStack, resourceId: string) =>
  (await stack.gateway.services.db.query<DeliveryFacts>(
    `SELECT id::int, subscription_id, change_seq::int, generation, attempts, status FROM delivery WHERE resource_id = $1 ORDER BY id`, [resourceId])).rows;

describe(`batches of a change's notifications (${stackName})`, () => {
  let stack: TestStack;
  let clinic: FhirClient;
  let receiver: Receiver;

  beforeAll(async () => {
    stack = await startTestStack(DELIVERING);
    clinic = await organizationClient(stack, 'batch-clinic');
    receiver = await Receiver.start();
  });
  afterAll(async () => {
    await receiver?.close();
    await stack?.stop();
  });

  it('sends a change to its subscriptions from one job; a member that fails is retried in a job of its own, once in effect', async () => {
    const patientId = (await clinic.post('Patient', patient('BATCH-1'))).body.id;
    const criteria = `Observation?patient=Patient/${patientId}`;
    const subs = await Promise.all(['a', 'b', 'flaky'].map((name) => subscribe(clinic, criteriaSubscription(`${receiver.url}/${name}`, criteria))));
    let flakyCalls = 0;
    receiver.answerWith((req) => (req.path.startsWith('/flaky/') && ++flakyCalls <= 2 ? 503 : 200));
    const observation = (await clinic.post('Observation', bodyTemperature(patientId, 37.1, '2026-11-27T09:00:00+09:00'))).body;
    const delivered = await eventually(async () => {
      const rows = await deliveriesOf(stack, observation.id);
      return rows.length === 3 && rows.every((r) => r.status === 'delivered') && rows;
    }, 'three notifications delivered');

    // The matching queued all three in the change's batch job(s): one per block of delivery ids.
    const { deliveries } = stack.gateway.services.exchange;
    const jobIds = [...new Set(delivered.map((d) => batchJobId(d.change_seq, d.id)))];
    const jobs = await Promise.all(jobIds.map((id) => deliveries.getJob(id)));
    expect(jobs.every((job) => job?.name === DELIVERY_BATCH_JOB)).toBe(true);
    expect(jobs.flatMap((job) => (job!.data as DeliveryBatchData).deliveries.map((d) => d.delivery)).sort()).toEqual(delivered.map((d) => d.id).sort());

    const flaky = delivered.find((d) => d.subscription_id === subs[2].id)!;
    expect(flaky).toMatchObject({ attempts: 3, generation: 1 });
    expect(await deliveries.getJob(deliveryJobId(flaky))).toBeDefined();
    for (const ok of delivered.filter((d) => d !== flaky)) expect(ok).toMatchObject({ attempts: 1, generation: 0 });

    const flakyRequests = receiver.requests.filter((r) => r.path.startsWith('/flaky/'));
    expect(flakyRequests.map((r) => r.status)).toEqual([503, 503, 200]);
    expect(new Set(flakyRequests.map((r) => r.headers['x-renkei-idempotency-key'])).size).toBe(1);
    expect(receiver.applied.filter((r) => r.path.includes(observation.id))).toHaveLength(3);
  });

  it('holds the whole batch while an earlier change about the patient is being matched, then sends it from the same job', async () => {
    const patientId = (await clinic.post('Patient', patient('BATCH-2'))).body.id;
    const criteria = `Observation?patient=Patient/${patientId}`;
    await Promise.all(['c', 'd'].map((name) => subscribe(clinic, criteriaSubscription(`${receiver.url}/${name}`, criteria))));
    receiver.answerWith(() => 200);
    const { db, exchange } = stack.gateway.services;
    // An earlier change about the patient, relayed but not matched yet.
    const { rows: [earlier] } = await db.query<{ seq: number }>(
      `INSERT INTO outbox (resource_type, id, version_id, action, patient_id, relayed_at) VALUES ('Observation', 'batch-earlier', 1, 'create', $1, now()) RETURNING seq`,
      [patientId]);
    const observation = (await clinic.post('Observation', bodyTemperature(patientId, 37.4, '2026-11-27T10:00:00+09:00'))).body;
    const waiting = await eventually(async () => {
      const rows = await deliveriesOf(stack, observation.id);
      if (rows.length !== 2) return false;
      const job = await exchange.deliveries.getJob(batchJobId(rows[0].change_seq, rows[0].id));
      return (await job?.getState()) === 'delayed' && rows;
    }, 'the batch to wait');
    await new Promise((r) => setTimeout(r, 300));
    expect(receiver.requests.filter((r) => r.path.includes(observation.id))).toHaveLength(0);

    await db.query('UPDATE outbox SET matched_at = now() WHERE seq = $1', [earlier.seq]);
    const delivered = await eventually(async () => {
      const rows = await deliveriesOf(stack, observation.id);
      return rows.every((r) => r.status === 'delivered') && rows;
    }, 'the batch delivered');
    expect(delivered.map((d) => d.id)).toEqual(waiting.map((d) => d.id));
    expect(delivered.every((d) => d.generation === 0 && d.attempts === 1), 'sent from the batch job, once').toBe(true);
  });

  it('sends the successors a settlement wakes in batch jobs too, each after its predecessor', async () => {
    const patientId = (await clinic.post('Patient', patient('BATCH-3'))).body.id;
    const criteria = `Observation?patient=Patient/${patientId}`;
    await Promise.all(['e', 'f', 'g'].map((name) => subscribe(clinic, criteriaSubscription(`${receiver.url}/${name}`, criteria))));
    // Slow answers: the second change is matched while the first one's notifications are still pending.
    receiver.answerWith(async () => (await new Promise((r) => setTimeout(r, 300)), 200));
    const first = (await clinic.post('Observation', bodyTemperature(patientId, 36.8, '2026-11-27T11:00:00+09:00'))).body;
    const second = (await clinic.post('Observation', bodyTemperature(patientId, 36.9, '2026-11-27T11:30:00+09:00'))).body;
    const successors = await eventually(async () => {
      const rows = await deliveriesOf(stack, second.id);
      return rows.length === 3 && rows.every((r) => r.status === 'delivered') && rows;
    }, 'the second change delivered');
    receiver.answerWith(() => 200);

    const { deliveries } = stack.gateway.services.exchange;
    expect(successors.every((d) => d.generation === 1), 'woken once').toBe(true);
    const batchJobs = (await Promise.all(successors.map((d) => deliveries.getJob(wokenBatchJobId(d.change_seq, d.id, 1))))).filter((job) => job);
    const carried = batchJobs.flatMap((job) => (job!.data as DeliveryBatchData).deliveries.map((m) => m.delivery));
    expect(carried.sort()).toEqual(successors.map((d) => d.id).sort());
    for (const d of successors) expect(await deliveries.getJob(deliveryJobId(d)), 'no job of its own').toBeUndefined();

    for (const name of ['e', 'f', 'g']) {
      const paths = receiver.applied.map((r) => r.path).filter((path) => path.startsWith(`/${name}/`));
      expect(paths.indexOf(paths.find((path) => path.includes(first.id))!)).toBeLessThan(paths.indexOf(paths.find((path) => path.includes(second.id))!));
    }
  });

  it("matching a change again adds nothing and returns what is still pending and queued of the first run", async () => {
    const { db } = stack.gateway.services;
    const patientId = (await clinic.post('Patient', patient('BATCH-AGAIN'))).body.id;
    const criteria = `Observation?patient=Patient/${patientId}`;
    const subs = await Promise.all(['again-a', 'again-b'].map((name) => subscribe(clinic, criteriaSubscription(`${receiver.url}/${name}`, criteria))));
    receiver.answerWith((req) => (req.path.startsWith('/again-b/') ? 503 : 200));
    try {
      const observation = (await clinic.post('Observation', bodyTemperature(patientId, 36.9, '2026-11-27T10:00:00+09:00'))).body;
      const [delivered, failing] = await eventually(async () => {
        const rows = await deliveriesOf(stack, observation.id);
        const a = rows.find((r) => r.subscription_id === subs[0].id);
        const b = rows.find((r) => r.subscription_id === subs[1].id);
        return a?.status === 'delivered' && b && b.attempts >= 1 && [a, b];
      }, 'one delivered, one failing');

      const change = (await db.query<Change>(
        `SELECT seq::int, resource_type AS "resourceType", id, version_id AS "versionId", action, owner, patient_id AS "patientId",
           (extract(epoch FROM created_at) * 1000)::float8 AS "committedAt" FROM outbox WHERE id = $1`, [observation.id])).rows[0];
      const subscribers = (await db.query<{ id: string; owner: string; purpose: string }>(
        'SELECT id, owner, purpose FROM subscription_state WHERE id = ANY($1::text[]) ORDER BY id', [subs.map((s) => s.id)])).rows;
      const counters = async () => (await db.query('SELECT id, events FROM subscription_state WHERE id = ANY($1::text[]) ORDER BY id', [subs.map((s) => s.id)])).rows;
      const before = await counters();

      const again = await recordMatches(db, change, subscribers);
      expect(again.map((r) => r.id)).toEqual([failing.id]);
      expect(again[0]).toMatchObject({ subscriber: 'batch-clinic', changeSeq: change.seq });
      expect((await deliveriesOf(stack, observation.id)).map((r) => r.id).sort()).toEqual([delivered.id, failing.id].sort());
      expect(await counters(), 'no event numbered twice').toEqual(before);
    } finally {
      receiver.answerWith(() => 200);
    }
  });
});

describe(`reconciliation of batch jobs (${stackName})`, () => {
  let stack: TestStack;

  beforeAll(async () => {
    // No workers: the queued jobs stay where the test can see them.
    stack = await startTestStack({ RENKEI_WORKERS: 'off', RENKEI_RELAY: 'off' });
  });
  afterAll(() => stack?.stop());

  it("finds a delivery's batch job by its change, and re-queues each delivery alone once that job is lost", async () => {
    const { db, exchange } = stack.gateway.services;
    const { rows } = await db.query<DeliveryJobRef & { change_seq: string }>(
      `INSERT INTO delivery (subscription_id, subscriber, kind, change_seq, resource_type, resource_id, version_id, order_key, updated_at)
       SELECT 'sub-' || n, 'batch-clinic', 'event', 990001, 'Observation', 'obs-batch', 1, 'Patient/p', now() - interval '1 hour'
       FROM generate_series(1, 2) n RETURNING id::int, generation, subscriber, change_seq`);
    const refs = rows.map((r) => ({ id: r.id, generation: r.generation, subscriber: r.subscriber, changeSeq: Number(r.change_seq) }));
    await exchange.enqueueDeliveries(refs);
    const jobIds = [...new Set(refs.map((r) => batchJobId(r.changeSeq, r.id)))];
    const reconciler = new Reconciler(db, exchange.changes, exchange.deliveries, (r) => exchange.enqueueDeliveries(r), 1000);
    expect((await reconciler.run()).deliveries, 'their batch job is waiting').toBe(0);

    for (const id of jobIds) await (await exchange.deliveries.getJob(id))!.remove(); // as if Redis had lost it
    expect((await reconciler.run()).deliveries).toBe(2);
    for (const ref of refs) {
      const job = await exchange.deliveries.getJob(deliveryJobId({ id: ref.id, generation: 1 }));
      expect(job?.data).toMatchObject({ delivery: ref.id, subscriber: 'batch-clinic' });
    }
  });

  it('retries a failed batch job once, however many of its deliveries are overdue', async () => {
    const { db, exchange } = stack.gateway.services;
    const { rows } = await db.query<{ id: number }>(
      `INSERT INTO delivery (id, subscription_id, subscriber, kind, change_seq, resource_type, resource_id, version_id, order_key, updated_at)
       SELECT 9900200 + n, 'sub-f' || n, 'batch-clinic', 'event', 990002, 'Observation', 'obs-batch-failed', 1, 'Patient/q', now() - interval '1 hour'
       FROM generate_series(1, 3) n RETURNING id::int`); // one block of ids: one batch job
    await exchange.enqueueDeliveries(rows.map((r) => ({ id: r.id, generation: 0, subscriber: 'batch-clinic', changeSeq: 990002 })));
    const jobId = batchJobId(990002, rows[0].id);
    const failing = exchange.backend.worker(DELIVERIES_QUEUE, async () => {
      throw new UnrecoverableError('endpoint gone');
    }, { concurrency: 1 });
    await eventually(async () => (await (await exchange.deliveries.getJob(jobId))?.getState()) === 'failed', 'the batch job to fail');
    await failing.close();

    const reconciler = new Reconciler(db, exchange.changes, exchange.deliveries, (r) => exchange.enqueueDeliveries(r), 1000);
    expect((await reconciler.run()).deliveries, 'held again by its retried job').toBe(0);
    expect(await (await exchange.deliveries.getJob(jobId))!.getState()).toBe('waiting');
  });
});

describe(`deliveries under a rate limit (${stackName})`, () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startTestStack({ RENKEI_WORKERS: 'off', RENKEI_RELAY: 'off', RENKEI_DELIVERY_RATE_LIMIT: '5' });
  });
  afterAll(() => stack?.stop());

  it('queues each delivery of a change in a job of its own: the limit counts jobs', async () => {
    const { exchange } = stack.gateway.services;
    const refs = [{ id: 880001, generation: 0, subscriber: 'org-a', changeSeq: 77 }, { id: 880002, generation: 0, subscriber: 'org-b', changeSeq: 77 }];
    await exchange.enqueueDeliveries(refs);
    expect(await exchange.deliveries.getJob(batchJobId(77, 880001))).toBeUndefined();
    for (const ref of refs) expect((await exchange.deliveries.getJob(deliveryJobId(ref)))?.data).toEqual({ delivery: ref.id, subscriber: ref.subscriber });
  });
});
