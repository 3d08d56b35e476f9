/**
 * The second baseline of the create benchmark: the rows the gateway commits for one Patient create
 * (current row, version row, search-index rows, AuditEvent, outbox row) written by a bare `pg` script,
 * one transaction of plain INSERTs per Patient, into the gateway's own schema. Everything the gateway
 * does besides these inserts (HTTP, authentication, validation, index extraction, ownership, the
 * response) is what the ratio against it measures.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { auditRow } from '../src/audit/events.js';
import { openDatabase } from '../src/store/db.js';
import { migrate } from '../src/store/migrate.js';
import { extractIndexRows, type IndexRows } from '../src/store/search/extract.js';
import type { AuditRow } from '../src/store/write-batch.js';
import { runPool } from './stats.js';
import { patientOf } from './workload.js';

const OWNER = 'bench-bare';

/** Creates the gateway's schema in the (empty) baseline database. */
export async function prepareGatewaySchema(url: string): Promise<void> {
  const db = await openDatabase({ databaseUrl: url, dataDir: '', poolSize: 1 });
  try {
    await migrate(db);
  } finally {
    await db.close();
  }
}

/** Inserts `total` Patients' rows with `concurrency` connections; returns Patients per second. */
export async function bareGatewayRows(url: string, total: number, warmUp: number, concurrency: number): Promise<number> {
  const pool = new pg.Pool({ connectionString: url, max: concurrency });
  try {
    // Rows are built before the clock starts: the baseline times the inserts alone.
    const rows = Array.from({ length: total + warmUp }, (_, i) => patientRows(`bare-${i}`));
    await runPool(warmUp, concurrency, (i) => insertPatientRows(pool, rows[total + i]));
    const { seconds } = await runPool(total, concurrency, (i) => insertPatientRows(pool, rows[i]));
    return total / seconds;
  } finally {
    await pool.end();
  }
}

interface PatientRows {
  id: string;
  now: Date;
  content: string;
  index: IndexRows;
  audit: AuditRow;
}

function patientRows(localId: string): PatientRows {
  const id = randomUUID();
  const now = new Date();
  const patient = { ...patientOf(localId), id, meta: { versionId: '1', lastUpdated: now.toISOString() } };
  return {
    id, now, content: JSON.stringify(patient), index: extractIndexRows(patient),
    audit: auditRow({ interaction: 'create', actor: { admin: false, organizationId: OWNER, clientId: OWNER, purposeOfUse: 'TREAT' }, owner: OWNER, patientId: id, entities: [`Patient/${id}/_history/1`] }),
  };
}

async function insertPatientRows(pool: pg.Pool, { id, now, content, index, audit }: PatientRows): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(
      'INSERT INTO resource (resource_type, id, version_id, last_updated, deleted, owner, patient_id, content) VALUES ($1, $2, 1, $3, false, $4, $2, $5)',
      ['Patient', id, now, OWNER, content],
    );
    await client.query(
      "INSERT INTO resource_version (resource_type, id, version_id, last_updated, deleted, owner, patient_id, content, method) VALUES ($1, $2, 1, $3, false, $4, $2, $5, 'POST')",
      ['Patient', id, now, OWNER, content],
    );
    for (const [table, columns, values] of indexInserts(index)) {
      if (!values.length) continue;
      const width = columns.length + 2;
      const tuples = values.map((_, r) => `(${Array.from({ length: width }, (_, c) => `$${r * width + c + 1}`).join(', ')})`);
      await client.query(
        `INSERT INTO ${table} (resource_type, id, ${columns.join(', ')}) VALUES ${tuples.join(', ')}`,
        values.flatMap((row) => ['Patient', id, ...row]),
      );
    }
    await client.query(
      'INSERT INTO audit_event (id, recorded, action, outcome, agent_org, agent_client, owner, patient_id, purpose, content, entity) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)',
      [audit.id, audit.recorded, audit.action, audit.outcome, audit.agentOrg, audit.agentClient, audit.owner, audit.patientId, audit.purpose, audit.json, audit.entity],
    );
    await client.query(
      "INSERT INTO outbox (resource_type, id, version_id, action, owner, patient_id) VALUES ('Patient', $1, 1, 'create', $2, $1)",
      [id, OWNER],
    );
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK');
    throw err;
  } finally {
    client.release();
  }
}

type IndexInsert = [table: string, columns: string[], values: unknown[][]];

function indexInserts(index: IndexRows): IndexInsert[] {
  return [
    ['sp_token', ['param', 'system', 'value', 'text_norm'], index.token.map((r) => [r.param, r.system, r.value, r.text])],
    ['sp_string', ['param', 'norm', 'exact'], index.string.map((r) => [r.param, r.norm, r.exact])],
    ['sp_date', ['param', 'lo', 'hi'], index.date.map((r) => [r.param, r.lo, r.hi])],
    ['sp_number', ['param', 'value', 'system', 'code'], index.number.map((r) => [r.param, r.value, r.system, r.code])],
    ['sp_reference', ['param', 'target_type', 'target_id', 'target'], index.reference.map((r) => [r.param, r.targetType, r.targetId, r.target])],
    ['sp_uri', ['param', 'value'], index.uri.map((r) => [r.param, r.value])],
  ];
}
