/**
 * Consent-filtered search against the same search made by the data's owner, on a store holding
 * 100,000 resources about 1,000 patients of 50 organizations with 2,000 Consents; and how long a
 * Consent change (which recomputes its grants in the same statement) takes. Owner and grantee searches
 * alternate (BENCH_CONSENT_SEARCHES each, 8 concurrent, then a third as many one client at a time).
 * Run alone: node --import tsx bench/consent.ts (BENCH_STACKS, BENCH_CONSENT_RESOURCES).
 */
import { randomUUID } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { startGatewayProcess } from './gateway-process.js';
import { embeddedStack, reachable, serverStack, type BenchStack } from './stacks.js';
import { fmt, runPool, summarize, type Latencies } from './stats.js';
import { BenchClient, observationOf, patientOf } from './workload.js';

const ADMIN_TOKEN = 'bench-admin-token';
const ORGS = 50;
const PATIENTS = 1000;
const CONSENTS_PER_PATIENT = 2;
const SEARCHES = Number(process.env.BENCH_CONSENT_SEARCHES ?? 3000);
const WARM_UP = 200;

export interface ConsentReport {
  stack: string;
  resources: number;
  consents: number;
  owner: Latencies;
  filtered: Latencies;
  ownerOneClient: Latencies;
  filteredOneClient: Latencies;
  consentUpdate: Latencies;
}

const orgId = (i: number) => `bench-org-${i}`;

function consentOf(patientId: string, owner: string, grantees: string[]) {
  return {
    resourceType: 'Consent', status: 'active',
    scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
    category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }],
    patient: { reference: `Patient/${patientId}` }, dateTime: '2026-11-01T10:00:00+09:00',
    organization: [{ reference: `Organization/${owner}` }],
    policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTIN' }] },
    provision: {
      type: 'permit', period: { start: '2026-01-01', end: '2099-12-31' },
      actor: grantees.map((g) => ({
        role: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP' }] },
        reference: { reference: `Organization/${g}` },
      })),
      purpose: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'TREAT' }],
      provision: [{ type: 'deny', class: [{ system: 'http://hl7.org/fhir/resource-types', code: 'DocumentReference' }] }],
    },
  };
}

export async function benchConsent(stack: BenchStack, port: number, totalResources: number): Promise<ConsentReport> {
  const gateway = await startGatewayProcess({ ...stack.env, RENKEI_ADMIN_TOKEN: ADMIN_TOKEN }, port);
  try {
    const clients: BenchClient[] = [];
    for (let o = 0; o < ORGS; o++) clients.push(await BenchClient.register(gateway.url, ADMIN_TOKEN, orgId(o)));
    // Patient p belongs to organization p % ORGS; its Consents open it to the next two organizations.
    const patientIds = Array.from({ length: PATIENTS }, () => randomUUID());
    const perPatient = Math.floor((totalResources - PATIENTS * (1 + CONSENTS_PER_PATIENT)) / PATIENTS);
    const consentIds: { owner: number; id: string; patient: number }[] = [];
    await runPool(PATIENTS, 4, async (p) => {
      const owner = p % ORGS;
      const entries: unknown[] = [{ resource: { ...patientOf(`CB-${p}`), id: patientIds[p] }, request: { method: 'PUT', url: `Patient/${patientIds[p]}` } }];
      for (let i = 0; i < perPatient; i++) entries.push({ resource: observationOf(patientIds[p], i), request: { method: 'POST', url: 'Observation' } });
      const res = await clients[owner].request('POST', '', { resourceType: 'Bundle', type: 'transaction', entry: entries }, { prefer: 'return=minimal' });
      if (res.status !== 200) throw new Error(`load: ${res.status} ${res.text.slice(0, 300)}`);
      for (let c = 0; c < CONSENTS_PER_PATIENT; c++) {
        const id = randomUUID();
        const grantees = [orgId((owner + 1 + c) % ORGS), orgId((owner + 3 + c) % ORGS)];
        const made = await clients[owner].request('PUT', `Consent/${id}`, { ...consentOf(patientIds[p], orgId(owner), grantees), id });
        if (made.status !== 201) throw new Error(`consent: ${made.status} ${made.text.slice(0, 300)}`);
        consentIds.push({ owner, id, patient: p });
      }
    });
    const resources = PATIENTS * (1 + perPatient + CONSENTS_PER_PATIENT);
    console.log(`[${stack.name}] consent world: ${resources} resources, ${consentIds.length} Consents, ${ORGS} organizations`);

    // Owner and grantee searches alternate in one pool, after a warm-up of both: each sees the same load,
    // background work (statistics, the audit sealer) and warmed-up code, so the ratio compares like with like.
    const query = (p: number) => `Observation?patient=${patientIds[p]}&_count=20`;
    const search = async (i: number, asGrantee: boolean) => {
      const p = (Math.floor(i / 2) * 7919) % PATIENTS;
      const res = await clients[asGrantee ? (p % ORGS + 1) % ORGS : p % ORGS].request('GET', query(p));
      if (res.status !== 200) throw new Error(`${asGrantee ? 'filtered' : 'owner'} search: ${res.status}`);
      if (asGrantee && JSON.parse(res.text).total !== perPatient) throw new Error('filtered search: wrong total');
    };
    const alternate = async (count: number, concurrency: number) => {
      const owner: number[] = [];
      const filtered: number[] = [];
      await runPool(count * 2, concurrency, async (i) => {
        const started = performance.now();
        await search(i, i % 2 === 1);
        (i % 2 === 1 ? filtered : owner).push(performance.now() - started);
      });
      return { owner: summarize(owner), filtered: summarize(filtered) };
    };
    await runPool(WARM_UP, 8, (i) => search(i + SEARCHES * 2, i % 2 === 1));
    const concurrent = await alternate(SEARCHES, 8);
    const oneClient = await alternate(SEARCHES / 3, 1);
    const updates = await runPool(300, 1, async (i) => {
      const c = consentIds[(i * 31) % consentIds.length];
      const grantees = [orgId((c.owner + 5 + (i % 7)) % ORGS)];
      const res = await clients[c.owner].request('PUT', `Consent/${c.id}`, { ...consentOf(patientIds[c.patient], orgId(c.owner), grantees), id: c.id });
      if (res.status !== 200) throw new Error(`consent update: ${res.status} ${res.text.slice(0, 300)}`);
    });
    return {
      stack: stack.name, resources, consents: consentIds.length,
      owner: concurrent.owner, filtered: concurrent.filtered, ownerOneClient: oneClient.owner, filteredOneClient: oneClient.filtered, consentUpdate: summarize(updates.latencies),
    };
  } finally {
    await gateway.stop();
  }
}

export function printConsentReport(reports: ConsentReport[]): void {
  console.log('\n| consent-filtered search | ' + reports.map((r) => r.stack).join(' | ') + ' |');
  console.log('|---|' + reports.map(() => '---:').join('|') + '|');
  const row = (label: string, f: (r: ConsentReport) => string) => console.log(`| ${label} | ${reports.map(f).join(' | ')} |`);
  row('resources / Consents', (r) => `${r.resources} / ${r.consents}`);
  row('search as owner p50 / p99 (ms), 8 concurrent', (r) => `${fmt(r.owner.p50)} / ${fmt(r.owner.p99)}`);
  row('same search through a Consent p50 / p99 (ms), 8 concurrent', (r) => `${fmt(r.filtered.p50)} / ${fmt(r.filtered.p99)}`);
  row('filtered p99 ÷ owner p99, 8 concurrent', (r) => fmt(r.filtered.p99 / r.owner.p99, 2));
  row('owner / through a Consent p50 / p99 (ms), one client at a time', (r) =>
    `${fmt(r.ownerOneClient.p50)} / ${fmt(r.ownerOneClient.p99)} → ${fmt(r.filteredOneClient.p50)} / ${fmt(r.filteredOneClient.p99)}`);
  row('filtered p99 ÷ owner p99, one client at a time', (r) => fmt(r.filteredOneClient.p99 / r.ownerOneClient.p99, 2));
  row('Consent update incl. grant recomputation p50 / p99 (ms)', (r) => `${fmt(r.consentUpdate.p50)} / ${fmt(r.consentUpdate.p99)}`);
}

async function main(): Promise<void> {
  const total = Number(process.env.BENCH_CONSENT_RESOURCES ?? 100_000);
  const reports: ConsentReport[] = [];
  let port = 18_180;
  for (const name of (process.env.BENCH_STACKS ?? 'embedded,servers').split(',')) {
    const url = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
    const stack = name === 'embedded' ? embeddedStack() : (await reachable(url)) ? await serverStack(url, 'redis://127.0.0.1:6379') : undefined;
    if (!stack) continue;
    try {
      reports.push(await benchConsent(stack, port++, total));
    } finally {
      await stack.cleanup();
    }
  }
  printConsentReport(reports);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
