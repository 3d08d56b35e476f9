/**
 * Notifications: change → delivered latency at a steady 100 changes/s to a local receiver, fan-out
 * throughput (each change notifies 200 subscriptions), and, measured in the same run on the same kind of
 * queue, BullMQ's bare add→process rate as the baseline. Embedded: serve runs the workers; servers: an
 * API process and a worker process on PostgreSQL and Redis.
 * Run alone: node --import tsx bench/exchange.ts (after npm run build; BENCH_STACKS, BENCH_EXCHANGE_CHANGES,
 * BENCH_FANOUT_CHANGES: changes in the fan-out, 20 by default; 100 leaves a backlog of 20,000 pending deliveries;
 * BENCH_WEBSOCKET_CHANGES: changes notified over a WebSocket at the same rate, 500 by default).
 * BENCH_WORKER_NODE_ARGS adds Node flags to `renkei worker` (e.g. `--cpu-prof --cpu-prof-dir=prof`).
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Subscription } from '@medplum/fhirtypes';
import { createPostgresBackend, Queue, runMigrations, Worker, type BackendFactory } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { bareDeliveriesApart } from './bare-deliveries.js';
import { prepareGatewaySchema } from './bare-rows.js';
import { CpuMeter, cpuMsOf, cpuMsOfCommand, ownCpuMs } from './cpu.js';
import { startGatewayProcess } from './gateway-process.js';
import { onEachStack, type BenchStack } from './stacks.js';
import { fmt, summarize, type Latencies } from './stats.js';
import { websocketLatency } from './websocket.js';
import { BenchClient, observationOf, patientOf } from './workload.js';

const ADMIN_TOKEN = 'bench-admin-token';
const CHANGES = Number(process.env.BENCH_EXCHANGE_CHANGES ?? 2000);
const RATE = 100;
const FANOUT = 200;
const FANOUT_CHANGES = Number(process.env.BENCH_FANOUT_CHANGES ?? 20);
const WEBSOCKET_CHANGES = Number(process.env.BENCH_WEBSOCKET_CHANGES ?? 500);
const MAIN = fileURLToPath(new URL('../dist/src/main.js', import.meta.url));

export interface ExchangeReport {
  stack: string;
  latency: Latencies;
  /** The same over the WebSocket channel (a topic-based subscription, MedicationRequests). */
  websocket: Latencies;
  fanoutPerSec: number;
  /** CPU ms per change of the steady run by process: worker, gateway, PostgreSQL, Redis, receiver (servers only). */
  steadyCpu?: Record<string, number>;
  /** The same per fan-out delivery. */
  fanoutCpu?: Record<string, number>;
  barePerSec: number;
  /** The fan-out's second baseline (see bare-deliveries.ts). */
  bareDeliveriesPerSec: number;
}

/** The webhook endpoint: answers 200 at once and notes when each notification arrived. */
class BenchReceiver {
  readonly arrivals = new Map<string, number>();
  count = 0;
  private waiting: { n: number; resolve: () => void }[] = [];
  private constructor(private readonly server: http.Server, readonly url: string) {}

  static async start(): Promise<BenchReceiver> {
    let receiver: BenchReceiver | undefined;
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        receiver!.arrived(`${req.headers['x-renkei-idempotency-key']}`);
        res.end();
      });
    });
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    receiver = new BenchReceiver(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    return receiver;
  }

  private arrived(key: string): void {
    if (this.arrivals.has(key)) return;
    this.arrivals.set(key, performance.now());
    this.count++;
    this.waiting = this.waiting.filter((w) => (this.count >= w.n ? (w.resolve(), false) : true));
  }

  until(n: number, ms = 120_000): Promise<void> {
    if (this.count >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${this.count} of ${n} notifications arrived`)), ms);
      this.waiting.push({ n, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const subscription = (endpoint: string, criteria: string): Subscription => ({
  resourceType: 'Subscription', status: 'requested', reason: 'bench', criteria,
  channel: { type: 'rest-hook', endpoint, payload: 'application/fhir+json' },
});

async function waitActive(client: BenchClient, n: number): Promise<void> {
  for (let i = 0; i < 1200; i++) {
    const status = await client.get('Subscription/$status?status=active');
    if (status.total >= n) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`fewer than ${n} subscriptions became active`);
}

/** Changes at a steady rate; latency from each write request to its notification's arrival. */
async function steadyLatency(client: BenchClient, receiver: BenchReceiver, patients: string[], n: number, offset: number): Promise<number[]> {
  const started: number[] = [];
  const ids: Promise<string>[] = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const due = t0 + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    started.push(performance.now());
    ids.push(client.create(observationOf(patients[i % patients.length], offset + i)));
  }
  const created = await Promise.all(ids);
  await receiver.until(offset + n);
  // Idempotency keys read Subscription/<id>/Observation/<id>/_history/<version>.
  const arrivalOf = new Map([...receiver.arrivals.entries()].map(([key, at]) => [key.split('/')[3], at]));
  return created.map((id, i) => arrivalOf.get(id)! - started[i]);
}

export async function benchExchange(stack: BenchStack, port: number): Promise<ExchangeReport> {
  // Ports of their own: another gateway on the machine may hold the default MLLP and worker ports.
  const workerEnv = {
    ...stack.env, RENKEI_ADMIN_TOKEN: ADMIN_TOKEN, RENKEI_ALLOW_PRIVATE_ENDPOINTS: 'true', MLLP_PORT: '0', RENKEI_WORKER_PORT: String(port + 1),
  };
  const gateway = await startGatewayProcess({ ...workerEnv, RENKEI_WORKERS: stack.name === 'embedded' ? 'on' : 'off' }, port);
  let worker: { pid: number; stop(): Promise<void> } | undefined;
  const receiver = await BenchReceiver.start();
  let measured: Omit<ExchangeReport, 'barePerSec' | 'bareDeliveriesPerSec'>;
  try {
    if (stack.name === 'servers') worker = await startWorker(workerEnv);
    const client = await BenchClient.register(gateway.url, ADMIN_TOKEN, 'bench-exchange');
    const patients: string[] = [];
    for (let i = 0; i < 50; i++) patients.push(await client.create(patientOf(`EX-${i}`)));

    await client.create(subscription(`${receiver.url}/steady`, 'Observation?category=vital-signs'));
    await waitActive(client, 1);
    await steadyLatency(client, receiver, patients, 200, 0); // warm-up
    const steadyMeter = worker ? processMeter(worker.pid, gateway.child.pid!) : undefined;
    steadyMeter?.start();
    const latencies = await steadyLatency(client, receiver, patients, CHANGES, 200);
    const steadyCpu = steadyMeter && perDelivery(steadyMeter.read(), CHANGES);
    const latency = summarize(latencies);
    log(stack, `change → delivered at ${RATE}/s: p50 ${fmt(latency.p50)} ms, p99 ${fmt(latency.p99)} ms (${CHANGES} changes)`);
    if (steadyCpu) log(stack, `CPU ms per change at ${RATE}/s: ${cpuText(steadyCpu)}`);
    if (stack.env.DATABASE_URL) await logStages(stack);
    const websocket = summarize(await websocketLatency(client, patients, WEBSOCKET_CHANGES, RATE, 100));
    log(stack, `change → received over a WebSocket at ${RATE}/s: p50 ${fmt(websocket.p50)} ms, p99 ${fmt(websocket.p99)} ms (${WEBSOCKET_CHANGES} changes)`);

    for (let i = 1; i < FANOUT; i++) await client.create(subscription(`${receiver.url}/fanout`, 'Observation?category=vital-signs'));
    await waitActive(client, FANOUT);
    const base = receiver.count;
    await client.create(observationOf(patients[0], 0)); // warm-up: one change to every subscriber
    await receiver.until(base + FANOUT);
    const before = receiver.count;
    const meter = worker ? processMeter(worker.pid, gateway.child.pid!) : undefined;
    meter?.start();
    const t0 = performance.now();
    await Promise.all(Array.from({ length: FANOUT_CHANGES }, (_, i) => client.create(observationOf(patients[(i + 1) % patients.length], i))));
    await receiver.until(before + FANOUT * FANOUT_CHANGES);
    const fanoutPerSec = (FANOUT * FANOUT_CHANGES) / ((Math.max(...[...receiver.arrivals.values()]) - t0) / 1000);
    log(stack, `fan-out: ${fmt(fanoutPerSec, 0)} deliveries/s (${FANOUT_CHANGES} changes × ${FANOUT} subscriptions)`);
    const fanoutCpu = meter && perDelivery(meter.read(), FANOUT * FANOUT_CHANGES);
    if (fanoutCpu) log(stack, `fan-out CPU ms per delivery: ${cpuText(fanoutCpu)}`);

    measured = { stack: stack.name, latency, steadyCpu, websocket, fanoutPerSec, fanoutCpu };
  } finally {
    await receiver.close();
    await worker?.stop();
    await gateway.stop();
  }
  // With the gateway and worker stopped: their background work (sealing, statistics, retention) is not the baseline's.
  const barePerSec = await bareBullmq(stack);
  log(stack, `bare BullMQ add→process: ${fmt(barePerSec, 0)} jobs/s`);
  const bareDeliveriesPerSec = await bareDeliveryWork(stack);
  log(stack, `bare delivery work (rows, signed POST, AuditEvent; no queue): ${fmt(bareDeliveriesPerSec, 0)} deliveries/s`);
  return { ...measured, barePerSec, bareDeliveriesPerSec };
}

/**
 * Where a notification's time went, from the store's own timestamps: commit → relayed into the queue →
 * matched (delivery row written) → delivered (settled after the 2xx answer). p50 / p99 of each step.
 */
async function logStages(stack: BenchStack): Promise<void> {
  const client = new pg.Client({ connectionString: stack.env.DATABASE_URL });
  await client.connect();
  try {
    const { rows } = await client.query<{ relayed: number; matched: number; delivered: number }>(
      `SELECT extract(epoch FROM o.relayed_at - o.created_at) * 1000 AS relayed,
         extract(epoch FROM d.created_at - o.relayed_at) * 1000 AS matched,
         extract(epoch FROM d.delivered_at - d.created_at) * 1000 AS delivered
       FROM delivery d JOIN outbox o ON o.seq = d.change_seq WHERE d.kind = 'event' AND d.delivered_at IS NOT NULL`);
    const step = (name: 'relayed' | 'matched' | 'delivered') => {
      const l = summarize(rows.map((r) => Number(r[name])));
      return `${name} ${fmt(l.p50)} / ${fmt(l.p99)}`;
    };
    log(stack, `steps p50 / p99 (ms): commit → ${step('relayed')} → ${step('matched')} → ${step('delivered')}`);
  } finally {
    await client.end();
  }
}

/** Where the CPU goes on the server stack, by process (the receiver runs in this process). */
const processMeter = (workerPid: number, gatewayPid: number) => new CpuMeter({
  worker: () => cpuMsOf(workerPid), gateway: () => cpuMsOf(gatewayPid), postgres: () => cpuMsOfCommand('postgres'),
  redis: () => cpuMsOfCommand('redis-server'), receiver: ownCpuMs,
});

const cpuText = (cpu: Record<string, number>) => Object.entries(cpu).map(([name, ms]) => `${name} ${fmt(ms, 3)}`).join(', ');

const perDelivery = (cpu: Record<string, number>, n: number) => Object.fromEntries(Object.entries(cpu).map(([name, ms]) => [name, ms / n]));

/** `renkei worker` for the server deployment, ready once it says so. */
async function startWorker(env: Record<string, string>): Promise<{ pid: number; stop(): Promise<void> }> {
  const nodeArgs = process.env.BENCH_WORKER_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const child = spawn(process.execPath, [...nodeArgs, MAIN, 'worker'], { env: { ...process.env, ...env, LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('"worker ready"') && resolve());
    child.once('exit', (code) => reject(new Error(`worker exited with ${code}`)));
  });
  child.stdout!.resume();
  return { pid: child.pid!, stop: () => new Promise((resolve) => (child.once('exit', () => resolve()), child.kill('SIGTERM'))) };
}

/** BullMQ alone on the same kind of queue: jobs added in bulk and taken by a worker doing nothing. */
async function bareBullmq(stack: BenchStack): Promise<number> {
  const n = stack.name === 'servers' ? 20_000 : 5000;
  const concurrency = 64;
  const target = stack.name === 'servers' ? undefined : await stack.bareUrl();
  let queue: Queue;
  let worker: Worker;
  let redis: Redis | undefined;
  if (target) {
    const client = new pg.Client({ connectionString: target.url });
    await client.connect();
    await runMigrations(client as never, 'public');
    await client.end();
    const connection = { connectionString: target.url, schema: 'public', max: 4 } as never;
    const factory = createPostgresBackend as unknown as BackendFactory;
    queue = new Queue('bare', { connection }, factory) as Queue;
    worker = new Worker('bare', async () => 1, { connection, concurrency, drainDelay: 0.01 }, factory) as Worker;
  } else {
    redis = new Redis(stack.env.REDIS_URL, { maxRetriesPerRequest: null });
    const prefix = `bench-bare-${Date.now()}`;
    queue = new Queue('bare', { connection: redis, prefix });
    worker = new Worker('bare', async () => 1, { connection: redis, prefix, concurrency });
  }
  let done = 0;
  const finished = new Promise<void>((resolve) => worker.on('completed', () => ++done === n && resolve()));
  await worker.waitUntilReady();
  const t0 = performance.now();
  for (let b = 0; b < n / 100; b++) await queue.addBulk(Array.from({ length: 100 }, (_, i) => ({ name: 'bare', data: { i: b * 100 + i } })));
  await finished;
  const rate = n / ((performance.now() - t0) / 1000);
  await worker.close();
  await queue.obliterate({ force: true }).catch(() => {});
  await queue.close();
  redis?.disconnect();
  await target?.close();
  return rate;
}

/** The rows, signed POSTs and AuditEvents of as many fan-outs, in the baseline store, to a receiver of its own. */
async function bareDeliveryWork(stack: BenchStack): Promise<number> {
  const target = await stack.bareUrl();
  const receiver = await BenchReceiver.start();
  try {
    await prepareGatewaySchema(target.url);
    return await bareDeliveriesApart(target.url, receiver.url, FANOUT_CHANGES, stack.name === 'servers' ? 16 : 4);
  } finally {
    await receiver.close();
    await target.close();
  }
}

function log(stack: BenchStack, message: string): void {
  console.log(`[${stack.name}] ${message}`);
}

export function printExchangeReport(reports: ExchangeReport[]): void {
  console.log('\n| notifications | ' + reports.map((r) => r.stack).join(' | ') + ' |');
  console.log('|---|' + reports.map(() => '---:').join('|') + '|');
  const row = (label: string, f: (r: ExchangeReport) => string) => console.log(`| ${label} | ${reports.map(f).join(' | ')} |`);
  row(`change → delivered p50 / p99 (ms) at ${RATE} changes/s`, (r) => `${fmt(r.latency.p50)} / ${fmt(r.latency.p99)}`);
  row(`CPU ms per change at ${RATE} changes/s: worker / gateway / PostgreSQL / Redis / receiver`, (r) => (r.steadyCpu
    ? Object.values(r.steadyCpu).map((ms) => fmt(ms, 2)).join(' / ') : '—'));
  row(`change → received over a WebSocket p50 / p99 (ms) at ${RATE} changes/s`, (r) => `${fmt(r.websocket.p50)} / ${fmt(r.websocket.p99)}`);
  row(`fan-out deliveries/s (each change → ${FANOUT} subscriptions)`, (r) => fmt(r.fanoutPerSec, 0));
  row('fan-out CPU ms per delivery: worker / gateway / PostgreSQL / Redis / receiver', (r) => (r.fanoutCpu
    ? Object.values(r.fanoutCpu).map((ms) => fmt(ms, 3)).join(' / ') : '—'));
  row('bare BullMQ add→process jobs/s (baseline)', (r) => fmt(r.barePerSec, 0));
  row('fan-out ÷ bare BullMQ', (r) => `${fmt((100 * r.fanoutPerSec) / r.barePerSec, 0)} %`);
  row('bare delivery work: rows, signed POST, AuditEvent, no queue (deliveries/s)', (r) => fmt(r.bareDeliveriesPerSec, 0));
  row('fan-out ÷ bare delivery work', (r) => `${fmt((100 * r.fanoutPerSec) / r.bareDeliveriesPerSec, 0)} %`);
  row('bare delivery work ÷ bare BullMQ', (r) => `${fmt((100 * r.bareDeliveriesPerSec) / r.barePerSec, 0)} %`);
}

async function main(): Promise<void> {
  printExchangeReport(await onEachStack(18_280, benchExchange));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
