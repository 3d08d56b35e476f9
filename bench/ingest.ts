/**
 * HL7 v2 ingest of RDE^O11 prescriptions (ISO-2022-JP). In process, on one core: the gateway's decode →
 * parse → map → validate beside the bare decode + parse of the same messages. End to end against the
 * gateway process: POST /ingest/hl7v2 and MLLP on MLLP_PORT, the most messages/s with concurrent senders
 * and the ACK latency at a steady 100 messages/s (open loop), beside the same resources written as FHIR
 * transaction Bundles (PUT) to the same gateway: what the HL7 intake adds to the FHIR write path. The
 * gateway's CPU time per message (from /proc) shows whether the gateway or the store is the limit.
 * Every ACK must be AA. Run alone: node --import tsx bench/ingest.ts (after npm run build; BENCH_STACKS,
 * BENCH_INGEST_MESSAGES, BENCH_INGEST_WARM_UP, BENCH_INGEST_SENDERS, BENCH_INGEST_PACED_SECONDS, BENCH_INGEST_PARSES).
 */
import { pathToFileURL } from 'node:url';
import type { MappedResource } from '../src/mapping/engine.js';
import { startGatewayProcess, type GatewayProcess } from './gateway-process.js';
import { ClinicClient, freePort, listening, MllpLink } from './hl7-senders.js';
import { benchParsing, CLINIC_ID, clinicOrganization, mappedResources, rdeMessages, type ParseReport } from './ingest-messages.js';
import { onEachStack, type BenchStack } from './stacks.js';
import { cpuMsOf, cpuMsOfCommand, ownCpuMs } from './cpu.js';
import { fmt, runPool, summarize, type Latencies } from './stats.js';

const ADMIN_TOKEN = 'bench-admin-token';
const MESSAGES = Number(process.env.BENCH_INGEST_MESSAGES ?? 1000);
const SENDERS = Number(process.env.BENCH_INGEST_SENDERS ?? 16);
const PACED_SECONDS = Number(process.env.BENCH_INGEST_PACED_SECONDS ?? 10);
const PARSES = Number(process.env.BENCH_INGEST_PARSES ?? 5000);
const RATE = 100;
// A fresh gateway compiles its hot paths over its first thousand or so messages: with 200 to warm up,
// the first transport measured (HTTP) ran on half-optimised code (2.0-2.1 ms of gateway CPU per message
// against 1.6 ms once warm), and the result depended on how long the measurement lasted.
const WARM_UP = Number(process.env.BENCH_INGEST_WARM_UP ?? 1000);

export { benchParsing, type ParseReport };
export const parsesSetting = () => PARSES;

export interface IngestReport {
  stack: string;
  http: Throughput;
  mllp: Throughput;
  fhir: Throughput;
  /** Undefined where the channel cannot take RATE messages/s: the latency would only measure its backlog. */
  httpAck?: Latencies;
  mllpAck?: Latencies;
  fhirLatency?: Latencies;
}

type Send = (message: Buffer) => Promise<void>;

/** How a message is sent: `prepare` runs before the clock starts, `send` is what is measured. */
interface Channel<T> {
  prepare(message: Buffer): T;
  send(payload: T): Promise<void>;
}

const hl7 = (send: Send): Channel<Buffer> => ({ prepare: (m) => m, send });

/** One gateway run: its process, and the orders acknowledged so far (one MedicationRequest each). */
interface Run {
  gatewayPid: number;
  /** The store is a PostgreSQL server on this machine (its CPU is measured too). */
  serverStore: boolean;
  orders: number;
}

export interface Throughput {
  perSec: number;
  /** CPU time of the gateway process per message. */
  cpuMs: number;
  /** CPU time of the PostgreSQL server's processes per message (0 on the embedded store: it runs inside the gateway). */
  storeCpuMs: number;
  /** CPU time of the senders (this process) per message: they share the machine with the gateway. */
  senderCpuMs: number;
}

const ordersOf = (message: Buffer) => message.toString('latin1').split('\rORC|').length - 1;

function prepared<T>(channel: Channel<T>, prefix: string, count: number): { payload: T; orders: number }[] {
  return rdeMessages(count, prefix).map((m) => ({ payload: channel.prepare(m), orders: ordersOf(m) }));
}

function sender<T>(run: Run, channel: Channel<T>) {
  return async (batch: { payload: T; orders: number }[]) => runPool(batch.length, SENDERS, async (i) => {
    await channel.send(batch[i].payload);
    run.orders += batch[i].orders;
  });
}

/** WARM_UP messages with SENDERS in flight, not measured. */
async function warmUp<T>(run: Run, prefix: string, channel: Channel<T>): Promise<void> {
  await sender(run, channel)(prepared(channel, `${prefix}W`, WARM_UP));
}

/** The most messages/s with SENDERS in flight. */
async function throughput<T>(run: Run, prefix: string, channel: Channel<T>): Promise<Throughput> {
  const sendAll = sender(run, channel);
  const batch = prepared(channel, `${prefix}T`, MESSAGES);
  const cpuBefore = cpuMsOf(run.gatewayPid);
  const storeBefore = run.serverStore ? cpuMsOfCommand('postgres') : 0;
  const senderBefore = ownCpuMs();
  const { seconds } = await sendAll(batch);
  return {
    perSec: MESSAGES / seconds,
    cpuMs: (cpuMsOf(run.gatewayPid) - cpuBefore) / MESSAGES,
    storeCpuMs: run.serverStore ? (cpuMsOfCommand('postgres') - storeBefore) / MESSAGES : 0,
    senderCpuMs: (ownCpuMs() - senderBefore) / MESSAGES,
  };
}

/** RATE messages/s whatever the answers do (open loop); each latency from sending to the answer. */
async function paced<T>(run: Run, prefix: string, channel: Channel<T>): Promise<Latencies> {
  const batch = prepared(channel, `${prefix}P`, RATE * PACED_SECONDS);
  const latencies: number[] = [];
  const inFlight: Promise<void>[] = [];
  let failure: unknown;
  const t0 = performance.now();
  for (let i = 0; i < batch.length && failure === undefined; i++) {
    const wait = t0 + (i * 1000) / RATE - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const started = performance.now();
    const answered = () => {
      latencies.push(performance.now() - started);
      run.orders += batch[i].orders;
    };
    inFlight.push(channel.send(batch[i].payload).then(answered, (err: unknown) => void (failure ??= err)));
  }
  await Promise.all(inFlight);
  if (failure !== undefined) throw failure;
  return summarize(latencies);
}

/** MLLP links handed to one sender at a time, so each connection has one message in flight. */
function oneInFlightEach(links: MllpLink[]): Send {
  const idle = [...links];
  return async (message) => {
    const link = idle.pop()!;
    try {
      await link.send(message);
    } finally {
      idle.push(link);
    }
  };
}

function roundRobin(links: MllpLink[]): Send {
  let next = 0;
  return (message) => links[next++ % links.length].send(message);
}

/**
 * The baseline: what the intake writes for a message, as one FHIR transaction of PUTs: its orders, and its
 * patient the first time it comes (the intake does not write an unchanged Patient again).
 */
function fhirTransactions(clinic: ClinicClient): Channel<string> {
  const patients = new Set<string>();
  const firstTime = (m: MappedResource) => m.resourceType !== 'Patient' || (!patients.has(m.id) && !!patients.add(m.id));
  return {
    prepare: (message) => JSON.stringify({
      resourceType: 'Bundle', type: 'transaction',
      entry: mappedResources(message).filter(firstTime).map((m) => ({ resource: m.resource, request: { method: 'PUT', url: `${m.resourceType}/${m.id}` } })),
    }),
    send: async (bundle) => {
      const answer = await clinic.post('/fhir', bundle, 'application/fhir+json');
      if (answer.status !== 200) throw new Error(`FHIR transaction: ${answer.status} ${answer.body.toString('utf8').slice(0, 800)}`);
    },
  };
}

async function admin(url: string, method: string, path: string, body: unknown, type = 'application/json'): Promise<any> {
  const res = await fetch(`${url}${path}`, {
    method, headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': type }, body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

/** The clinic (医療機関コード), its client, and its MLLP sender mapping (MSH-4 MIDORI). */
async function registerClinic(url: string): Promise<ClinicClient> {
  await admin(url, 'PUT', `/fhir/Organization/${CLINIC_ID}`, clinicOrganization(), 'application/fhir+json');
  const { client_id, client_secret } = await admin(url, 'POST', '/admin/clients', { organization: `Organization/${CLINIC_ID}`, name: 'bench clinic EHR' });
  await admin(url, 'POST', '/admin/mllp-senders', { sending_facility: 'MIDORI', client_id });
  return new ClinicClient(url, client_id, client_secret);
}

/** The gateway with MLLP_PORT set to a free port; it must answer POST /ingest/hl7v2 and listen on MLLP_PORT. */
async function startIngestGateway(stack: BenchStack, port: number): Promise<{ gateway: GatewayProcess; mllpPort: number }> {
  const mllpPort = await freePort();
  const gateway = await startGatewayProcess({ ...stack.env, RENKEI_ADMIN_TOKEN: ADMIN_TOKEN, MLLP_PORT: String(mllpPort) }, port);
  const http = (await fetch(`${gateway.url}/ingest/hl7v2`, { method: 'POST', body: 'MSH' })).status;
  const mllp = await listening(mllpPort, 5000);
  if (http === 401 && mllp) return { gateway, mllpPort };
  await gateway.stop();
  throw new Error(`renkei serve answers ${http} (not 401) to an unauthenticated POST /ingest/hl7v2`
    + ` and ${mllp ? 'listens' : 'does not listen'} on MLLP_PORT ${mllpPort}: it does not serve the HL7 v2 intake`);
}

export async function benchIngest(stack: BenchStack, port: number): Promise<IngestReport> {
  const { gateway, mllpPort } = await startIngestGateway(stack, port);
  const links: MllpLink[] = [];
  let clinic: ClinicClient | undefined;
  try {
    clinic = await registerClinic(gateway.url);
    for (let i = 0; i < SENDERS; i++) links.push(await MllpLink.connect(mllpPort));
    const run: Run = { gatewayPid: gateway.child.pid!, serverStore: stack.name === 'servers', orders: 0 };
    const overHttp = hl7(clinic.sendHl7.bind(clinic));
    const asFhir = fhirTransactions(clinic);

    const overMllp = hl7(oneInFlightEach(links));
    // Every path is warmed up before any is measured: the gateway's code is compiled, and the store's
    // statistics keeper has seen the tables grow (the first transport would otherwise run on plans made
    // for empty tables).
    await warmUp(run, 'H', overHttp);
    await warmUp(run, 'M', overMllp);
    await warmUp(run, 'F', asFhir);
    const http = await throughput(run, 'H', overHttp);
    log(stack, `HTTP: ${fmt(http.perSec, 0)} messages/s (${SENDERS} concurrent senders), gateway CPU ${fmt(http.cpuMs)} ms/message${storeCpu(http)}`);
    const mllp = await throughput(run, 'M', overMllp);
    log(stack, `MLLP: ${fmt(mllp.perSec, 0)} messages/s (${SENDERS} connections, one message in flight each), gateway CPU ${fmt(mllp.cpuMs)} ms/message${storeCpu(mllp)}`);
    const fhir = await throughput(run, 'F', asFhir);
    log(stack, `FHIR transactions of the same writes: ${fmt(fhir.perSec, 0)}/s (${SENDERS} concurrent), gateway CPU ${fmt(fhir.cpuMs)} ms/transaction${storeCpu(fhir)}`);

    const steady = async <T>(label: string, prefix: string, channel: Channel<T>, capacity: Throughput) => {
      if (capacity.perSec < RATE) return void log(stack, `${label} at ${RATE}/s: not run, ${fmt(capacity.perSec, 0)}/s at most`);
      const latency = await paced(run, prefix, channel);
      log(stack, `${label} at ${RATE}/s: p50 ${fmt(latency.p50)} ms, p99 ${fmt(latency.p99)} ms`);
      return latency;
    };
    const httpAck = await steady('HTTP ACK', 'H', overHttp, http);
    const mllpAck = await steady('MLLP ACK', 'M', hl7(roundRobin(links)), mllp);
    const fhirLatency = await steady('FHIR transaction', 'F', asFhir, fhir);

    await expectStoredOrders(clinic, run.orders);
    return { stack: stack.name, http, mllp, fhir, httpAck, mllpAck, fhirLatency };
  } finally {
    links.forEach((l) => l.close());
    clinic?.close();
    await gateway.stop();
  }
}

/** Every acknowledged order is stored: one MedicationRequest per ORC. */
async function expectStoredOrders(clinic: ClinicClient, expected: number): Promise<void> {
  const found = await clinic.get('/fhir/MedicationRequest?_summary=count');
  if (found.total !== expected) throw new Error(`${found.total} MedicationRequests stored, ${expected} expected`);
}

const storeCpu = (t: Throughput) => `${t.storeCpuMs ? `, PostgreSQL CPU ${fmt(t.storeCpuMs)} ms` : ''}, senders CPU ${fmt(t.senderCpuMs)} ms`;

function log(stack: BenchStack, message: string): void {
  console.log(`[${stack.name}] ${message}`);
}

export function printIngestReport(parsing: ParseReport | undefined, reports: IngestReport[]): void {
  if (parsing) {
    console.log(`\n| HL7 v2 RDE^O11 in process, one core (${parsing.messages} ISO-2022-JP messages) | messages/s |`);
    console.log('|---|---:|');
    console.log(`| bare parse: decode per MSH-18 + segments/fields (baseline) | ${fmt(parsing.bareParsePerSec, 0)} |`);
    console.log(`| decode + parse + map (rde-o11.json) + validate against the profiles | ${fmt(parsing.mapValidatePerSec, 0)} |`);
    console.log(`| parse + map + validate ÷ bare parse | ${fmt((100 * parsing.mapValidatePerSec) / parsing.bareParsePerSec, 1)} % |`);
  }
  if (!reports.length) return;
  console.log('\n| HL7 v2 ingest end to end | ' + reports.map((r) => r.stack).join(' | ') + ' |');
  console.log('|---|' + reports.map(() => '---:').join('|') + '|');
  const row = (label: string, f: (r: IngestReport) => string) => console.log(`| ${label} | ${reports.map(f).join(' | ')} |`);
  const pair = (l: Latencies | undefined, capacity: Throughput) => (l ? `${fmt(l.p50)} / ${fmt(l.p99)}` : `not run: ${fmt(capacity.perSec, 0)}/s at most`);
  row(`HTTP messages/s, ${SENDERS} concurrent senders`, (r) => fmt(r.http.perSec, 0));
  row(`MLLP messages/s, ${SENDERS} connections (one message in flight each)`, (r) => fmt(r.mllp.perSec, 0));
  row(`FHIR transactions/s of the same writes, ${SENDERS} concurrent (baseline)`, (r) => fmt(r.fhir.perSec, 0));
  row('HTTP ingest ÷ FHIR transactions', (r) => `${fmt((100 * r.http.perSec) / r.fhir.perSec, 0)} %`);
  row('MLLP ingest ÷ FHIR transactions', (r) => `${fmt((100 * r.mllp.perSec) / r.fhir.perSec, 0)} %`);
  row('gateway CPU ms per message: HTTP / MLLP / FHIR transaction', (r) => `${fmt(r.http.cpuMs)} / ${fmt(r.mllp.cpuMs)} / ${fmt(r.fhir.cpuMs)}`);
  row('PostgreSQL CPU ms per message: HTTP / MLLP / FHIR transaction (servers)', (r) => (r.http.storeCpuMs ? `${fmt(r.http.storeCpuMs)} / ${fmt(r.mllp.storeCpuMs)} / ${fmt(r.fhir.storeCpuMs)}` : '—'));
  row('senders\' CPU ms per message (the bench process): HTTP / MLLP / FHIR transaction', (r) => `${fmt(r.http.senderCpuMs)} / ${fmt(r.mllp.senderCpuMs)} / ${fmt(r.fhir.senderCpuMs)}`);
  row(`HTTP ACK p50 / p99 (ms) at ${RATE} messages/s`, (r) => pair(r.httpAck, r.http));
  row(`MLLP ACK p50 / p99 (ms) at ${RATE} messages/s`, (r) => pair(r.mllpAck, r.mllp));
  row(`FHIR transaction p50 / p99 (ms) at ${RATE}/s (baseline)`, (r) => pair(r.fhirLatency, r.fhir));
}

async function main(): Promise<void> {
  const parsing = benchParsing(PARSES);
  printIngestReport(parsing, await onEachStack(18_380, benchIngest));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
