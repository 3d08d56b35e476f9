/**
 * The fan-out's second baseline: the work a delivery cannot do without, done by a bare script into the
 * gateway's own schema. Per change, 200 delivery rows inserted in blocks of 100 (as the gateway's batch
 * jobs carry them), each notification POSTed with its HMAC-SHA256 signature and idempotency key over
 * keep-alive connections (undici, as the gateway's client), then per block one transaction marking the
 * rows delivered and inserting their AuditEvents. No queue, no matching, no event numbering, no ordering
 * per patient, no Consent check at send time, no sealing of the audit chain: the ratio against it is what
 * those cost. Runs in a process of its own (as the gateway's worker does), so the receiver in the bench
 * process does not share its thread.
 */
import { spawn } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';
import { Agent } from 'undici';
import type { AuditRow } from '../src/store/write-batch.js';
import { notificationAudit } from '../src/subscriptions/audit.js';
import { observationOf } from './workload.js';

const SUBSCRIBERS = 200;
const BLOCK = 100;

/** bareDeliveries in a child process; resolves with its deliveries per second. */
export function bareDeliveriesApart(url: string, receiverUrl: string, changes: number, poolSize: number): Promise<number> {
  const script = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, ['--import', 'tsx', script, url, receiverUrl, String(changes), String(poolSize)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  return new Promise((resolve, reject) => child.once('exit', (code) => {
    const rate = Number(out.trim().split('\n').pop());
    if (code === 0 && Number.isFinite(rate)) resolve(rate);
    else reject(new Error(`bare delivery work exited with ${code}`));
  }));
}

/** Runs `changes` fan-outs of 200 deliveries each at once (after one as warm-up); returns deliveries per second. */
export async function bareDeliveries(url: string, receiverUrl: string, changes: number, poolSize: number): Promise<number> {
  const pool = new pg.Pool({ connectionString: url, max: poolSize });
  const agent = new Agent({ connections: 256, keepAliveTimeout: 30_000 });
  try {
    await fanOut(pool, agent, receiverUrl, 0);
    const t0 = performance.now();
    await Promise.all(Array.from({ length: changes }, (_, i) => fanOut(pool, agent, receiverUrl, i + 1)));
    return (changes * SUBSCRIBERS) / ((performance.now() - t0) / 1000);
  } finally {
    await agent.close();
    await pool.end();
  }
}

async function fanOut(pool: pg.Pool, agent: Agent, receiverUrl: string, change: number): Promise<void> {
  const resourceId = randomUUID();
  const patientId = randomUUID();
  const observation = { ...observationOf(patientId, change), id: resourceId, meta: { versionId: '1', lastUpdated: new Date().toISOString() } };
  const body = JSON.stringify({
    resourceType: 'Bundle', type: 'history', timestamp: new Date().toISOString(),
    entry: [{ fullUrl: `${receiverUrl}/fhir/Observation/${resourceId}`, resource: observation, request: { method: 'POST', url: 'Observation' }, response: { status: '201' } }],
  });
  const blocks = Array.from({ length: SUBSCRIBERS / BLOCK }, (_, b) => b * BLOCK);
  await Promise.all(blocks.map(async (first) => {
    const { rows } = await pool.query<{ id: string; subscription_id: string }>(
      `INSERT INTO delivery (subscription_id, subscriber, kind, change_seq, resource_type, resource_id, version_id, action, patient_id, order_key, event_number)
       SELECT 'bare-sub-' || g, 'bare-org-' || g, 'event', $1::bigint, 'Observation', $2, 1, 'create', $3, $3, $1::bigint
       FROM generate_series($4::int, $5::int) g RETURNING id, subscription_id`,
      [change, resourceId, `Patient/${patientId}`, first, first + BLOCK - 1]);
    await Promise.all(rows.map((row) => post(agent, receiverUrl, row.subscription_id, `bare-${row.id}`, body)));
    await settle(pool, rows, resourceId, change);
  }));
}

async function post(agent: Agent, receiverUrl: string, subscriptionId: string, key: string, body: string): Promise<void> {
  const timestamp = String(Math.floor(Date.now() / 1000));
  const signature = createHmac('sha256', `secret-${subscriptionId}`).update(`${timestamp}.${key}.`).update(body).digest('hex');
  const url = new URL(`${receiverUrl}/bare`);
  const res = await agent.request({
    origin: url.origin, path: url.pathname, method: 'POST', body,
    headers: { 'content-type': 'application/fhir+json', 'x-renkei-idempotency-key': key, 'x-renkei-timestamp': timestamp, 'x-renkei-signature': `sha256=${signature}` },
  });
  await res.body.dump();
  if (res.statusCode >= 300) throw new Error(`the receiver answered ${res.statusCode}`);
}

async function settle(pool: pg.Pool, rows: { id: string; subscription_id: string }[], resourceId: string, change: number): Promise<void> {
  const audits = rows.map((row) => notificationAudit({
    subscriptionId: row.subscription_id, subscriber: `bare-org-${row.subscription_id}`, kind: 'event', endpointHost: '127.0.0.1', purpose: 'TREAT',
    resource: { type: 'Observation', id: resourceId, versionId: 1, owner: 'bench-bare', patientId: null }, eventNumber: change,
  }));
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(`UPDATE delivery SET status = 'delivered', attempts = attempts + 1, last_http_status = 200, delivered_at = now(), updated_at = now()
      WHERE id = ANY($1::bigint[])`, [rows.map((r) => r.id)]);
    const columns = (a: AuditRow) => [a.id, a.recorded, a.action, a.outcome, a.agentOrg, a.owner, a.purpose, a.entity, a.json];
    const width = columns(audits[0]).length;
    await client.query(
      `INSERT INTO audit_event (id, recorded, action, outcome, agent_org, owner, purpose, entity, content) VALUES ${audits.map((_, r) =>
        `(${Array.from({ length: width }, (_, c) => `$${r * width + c + 1}`).join(', ')})`).join(', ')}`,
      audits.flatMap(columns));
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK');
    throw err;
  } finally {
    client.release();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [url, receiverUrl, changes, poolSize] = process.argv.slice(2);
  bareDeliveries(url, receiverUrl, Number(changes), Number(poolSize)).then((rate) => console.log(rate), (err) => {
    console.error(err);
    process.exit(1);
  });
}
