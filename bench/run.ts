/**
 * npm run bench: the gateway's throughput and latency on both stacks, each beside a baseline measured in
 * the same run (bare `pg` inserts of the same resources into the same kind of store).
 * Settings: BENCH_RESOURCES (default 100000), BENCH_CREATES (5000), BENCH_STACKS (embedded,servers),
 * BENCH_DATABASE_URL / BENCH_REDIS_URL (default the local PostgreSQL and Redis), BENCH_PARTS
 * (store,consent,exchange,ingest), BENCH_EXCHANGE_CHANGES (2000), BENCH_FANOUT_CHANGES (20 changes × 200
 * subscriptions), BENCH_CONSENT_SEARCHES (3000 each).
 * ingest (HL7 v2 RDE^O11, see bench/ingest.ts): BENCH_INGEST_PARSES (5000 messages parsed and mapped in
 * process), BENCH_INGEST_MESSAGES (1000 per transport for throughput, after BENCH_INGEST_WARM_UP, 1000, to warm up),
 * BENCH_INGEST_SENDERS (16 concurrent HTTP senders / MLLP connections), BENCH_INGEST_PACED_SECONDS (10 s
 * at 100 messages/s per transport for ACK latency; not run where a transport takes fewer than 100/s).
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { startGatewayProcess } from './gateway-process.js';
import { embeddedStack, reachable, serverStack, type BenchStack } from './stacks.js';
import { fmt, runPool, summarize, type Latencies } from './stats.js';
import { validateResource } from '../src/validation/index.js';
import { createLogger, setLogger } from '../src/logger.js';
import { BenchClient, observationOf, patientOf } from './workload.js';
import { bareGatewayRows, prepareGatewaySchema } from './bare-rows.js';
import { benchConsent, printConsentReport, type ConsentReport } from './consent.js';
import { benchExchange, printExchangeReport, type ExchangeReport } from './exchange.js';
import { benchIngest, benchParsing, parsesSetting, printIngestReport, type IngestReport, type ParseReport } from './ingest.js';

// The baselines' in-process stores would log their start and migrations between the report lines.
setLogger(createLogger(process.env.LOG_LEVEL || 'warn'));

const RESOURCES = Number(process.env.BENCH_RESOURCES ?? 100_000);
const CREATES = Number(process.env.BENCH_CREATES ?? 5000);
const WARM_UP = 1000;
const STACKS = (process.env.BENCH_STACKS ?? 'embedded,servers').split(',');
const PARTS = (process.env.BENCH_PARTS ?? 'store,consent,exchange,ingest').split(',');
const PG_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const ADMIN_TOKEN = 'bench-admin-token';

interface StackReport {
  stack: string;
  coldStartMs: number;
  createsPerSec: number;
  bareInsertsPerSec: number;
  bareGatewayRowsPerSec: number;
  txResourcesPerSec: number;
  loaded: number;
  read: Latencies;
  searchIdentifier: Latencies;
  searchIdentifierOneClient: Latencies;
  searchPatientObservations: Latencies;
  peakRssMb: number;
}

async function benchStack(stack: BenchStack, port: number): Promise<StackReport> {
  const gateway = await startGatewayProcess({ ...stack.env, RENKEI_ADMIN_TOKEN: ADMIN_TOKEN }, port);
  try {
    const client = await BenchClient.register(gateway.url, ADMIN_TOKEN, 'bench-clinic');
    log(stack, `cold start ${fmt(gateway.coldStartMs, 0)} ms`);

    const patientIds: string[] = [];
    // A cold process runs its first requests unoptimised: warm up before measuring.
    await runPool(WARM_UP, 16, async (i) => {
      patientIds.push(await client.create(patientOf(`W-${i}`)));
    });
    const created = await runPool(CREATES, 16, async (i) => {
      patientIds.push(await client.create(patientOf(`C-${i}`)));
    });
    const createsPerSec = CREATES / created.seconds;
    log(stack, `creates: ${fmt(createsPerSec, 0)}/s (16 concurrent)`);

    const { bareInsertsPerSec, bareGatewayRowsPerSec } = await bareInserts(stack, CREATES, 16);
    log(stack, `bare pg inserts: ${fmt(bareInsertsPerSec, 0)}/s one JSON row each, ${fmt(bareGatewayRowsPerSec, 0)}/s the gateway's rows each (16 concurrent)`);

    const txBundles = 40;
    const tx = await runPool(txBundles, 2, async (b) => {
      await client.transaction(Array.from({ length: 100 }, (_, j) => observationOf(patientIds[(b * 100 + j) % patientIds.length], j)));
    });
    const txResourcesPerSec = (txBundles * 100) / tx.seconds;
    log(stack, `transactions: ${fmt(txResourcesPerSec, 0)} resources/s in 100-entry bundles`);

    let loaded = WARM_UP + CREATES + txBundles * 100;
    const remaining = Math.max(0, RESOURCES - loaded);
    await runPool(Math.ceil(remaining / 100), 4, async (b) => {
      const batch = Array.from({ length: 100 }, (_, j) =>
        j % 5 === 0 ? patientOf(`L-${b}-${j}`) : observationOf(patientIds[(b * 7 + j) % patientIds.length], j),
      );
      await client.transaction(batch);
    });
    loaded += Math.ceil(remaining / 100) * 100;
    log(stack, `loaded ${loaded} resources`);

    const pick = (i: number) => patientIds[(i * 7919) % patientIds.length];
    const read = await runPool(2000, 8, async (i) => void (await client.get(`Patient/${pick(i)}`)));
    const searchIdentifier = async (i: number) => {
      const bundle = await client.get(`Patient?identifier=${encodeURIComponent(`urn:oid:1.2.392.100495.20.3.51.11310000099|C-${(i * 7919) % CREATES}`)}`);
      if (bundle.total !== 1) throw new Error(`identifier search found ${bundle.total}`);
    };
    const byIdentifier = await runPool(2000, 8, searchIdentifier);
    const byIdentifierOneClient = await runPool(1000, 1, searchIdentifier);
    const byPatient = await runPool(1000, 8, async (i) => void (await client.get(`Observation?patient=${pick(i)}&_count=20`)));
    const report: StackReport = {
      stack: stack.name,
      coldStartMs: gateway.coldStartMs,
      createsPerSec,
      bareInsertsPerSec,
      bareGatewayRowsPerSec,
      txResourcesPerSec,
      loaded,
      read: summarize(read.latencies),
      searchIdentifier: summarize(byIdentifier.latencies),
      searchIdentifierOneClient: summarize(byIdentifierOneClient.latencies),
      searchPatientObservations: summarize(byPatient.latencies),
      peakRssMb: gateway.peakRssMb(),
    };
    return report;
  } finally {
    await gateway.stop();
  }
}

/**
 * The baselines, on a second store of the same kind: the same Patient JSON as one autocommit INSERT into
 * a one-table schema, and the rows the gateway commits for it (bench/bare-rows.ts) in its own schema.
 */
async function bareInserts(stack: BenchStack, total: number, concurrency: number): Promise<{ bareInsertsPerSec: number; bareGatewayRowsPerSec: number }> {
  const target = await stack.bareUrl();
  const pool = new pg.Pool({ connectionString: target.url, max: concurrency });
  try {
    await pool.query('CREATE TABLE IF NOT EXISTS bench_bare (id text PRIMARY KEY, content jsonb NOT NULL)');
    const json = JSON.stringify(patientOf('BARE'));
    await runPool(WARM_UP, concurrency, async () => {
      await pool.query('INSERT INTO bench_bare (id, content) VALUES ($1, $2)', [randomUUID(), json]);
    });
    const { seconds } = await runPool(total, concurrency, async () => {
      await pool.query('INSERT INTO bench_bare (id, content) VALUES ($1, $2)', [randomUUID(), json]);
    });
    await prepareGatewaySchema(target.url);
    const bareGatewayRowsPerSec = await bareGatewayRows(target.url, total, WARM_UP, concurrency);
    return { bareInsertsPerSec: total / seconds, bareGatewayRowsPerSec };
  } finally {
    await pool.end();
    await target.close();
  }
}

function log(stack: BenchStack, message: string): void {
  console.log(`[${stack.name}] ${message}`);
}

function printReport(reports: StackReport[]): void {
  console.log('\n| measure | ' + reports.map((r) => r.stack).join(' | ') + ' |');
  console.log('|---|' + reports.map(() => '---:').join('|') + '|');
  const row = (label: string, f: (r: StackReport) => string) => console.log(`| ${label} | ${reports.map(f).join(' | ')} |`);
  row('cold start (ms)', (r) => fmt(r.coldStartMs, 0));
  row('creates/s, 16 concurrent', (r) => fmt(r.createsPerSec, 0));
  row("bare pg: the gateway's rows of a create, one transaction each (baseline)", (r) => fmt(r.bareGatewayRowsPerSec, 0));
  row("creates ÷ bare gateway rows", (r) => `${fmt((100 * r.createsPerSec) / r.bareGatewayRowsPerSec, 0)} %`);
  row('bare pg: one JSON row per create', (r) => fmt(r.bareInsertsPerSec, 0));
  row('creates ÷ bare JSON rows', (r) => `${fmt((100 * r.createsPerSec) / r.bareInsertsPerSec, 0)} %`);
  row('resources/s in 100-entry transactions', (r) => fmt(r.txResourcesPerSec, 0));
  row('resources loaded', (r) => String(r.loaded));
  row('read p50 / p99 (ms), 8 concurrent', (r) => `${fmt(r.read.p50)} / ${fmt(r.read.p99)}`);
  row('search by identifier p50 / p99 (ms), 8 concurrent', (r) => `${fmt(r.searchIdentifier.p50)} / ${fmt(r.searchIdentifier.p99)}`);
  row('search by identifier, one client at a time, p50 / p99 (ms)', (r) => `${fmt(r.searchIdentifierOneClient.p50)} / ${fmt(r.searchIdentifierOneClient.p99)}`);
  row("search a patient's Observations p50 / p99 (ms), 8 concurrent", (r) => `${fmt(r.searchPatientObservations.p50)} / ${fmt(r.searchPatientObservations.p99)}`);
  row('gateway peak RSS (MB)', (r) => fmt(r.peakRssMb, 0));
}

/** In-process validation of a Patient claiming the gateway's profile (structure + invariants + profile). */
function validationRate(): number {
  const patient = { ...patientOf('V-1'), meta: { profile: ['http://renkei.jp/fhir/StructureDefinition/renkei-patient'] } };
  for (let i = 0; i < 2000; i++) validateResource(patient);
  const n = 20_000;
  const started = performance.now();
  for (let i = 0; i < n; i++) validateResource(patient);
  return n / ((performance.now() - started) / 1000);
}

async function main(): Promise<void> {
  console.log(`validation: ${fmt(validationRate(), 0)} profiled Patients/s in one process`);
  const reports: StackReport[] = [];
  const consentReports: ConsentReport[] = [];
  const exchangeReports: ExchangeReport[] = [];
  const ingestReports: IngestReport[] = [];
  let parsing: ParseReport | undefined;
  if (PARTS.includes('ingest')) {
    parsing = benchParsing(parsesSetting());
    console.log(`HL7 v2 in process: ${fmt(parsing.bareParsePerSec, 0)} bare parses/s, ${fmt(parsing.mapValidatePerSec, 0)} parse + map + validate/s`);
  }
  let port = 18_080;
  for (const name of STACKS) {
    for (const part of PARTS) {
      let stack: BenchStack;
      if (name === 'embedded') stack = embeddedStack();
      else if (await reachable(PG_URL)) stack = await serverStack(PG_URL, REDIS_URL);
      else {
        console.log(`[servers] skipped: no PostgreSQL at ${PG_URL}`);
        break;
      }
      try {
        if (part === 'store') reports.push(await benchStack(stack, port++));
        else if (part === 'consent') consentReports.push(await benchConsent(stack, port++, RESOURCES));
        else if (part === 'exchange') exchangeReports.push(await benchExchange(stack, port++));
        else if (part === 'ingest') ingestReports.push(await benchIngest(stack, port++));
      } finally {
        await stack.cleanup();
      }
    }
  }
  if (reports.length) printReport(reports);
  if (consentReports.length) printConsentReport(consentReports);
  if (exchangeReports.length) printExchangeReport(exchangeReports);
  if (parsing) printIngestReport(parsing, ingestReports);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
