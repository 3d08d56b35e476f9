import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { IndexRows } from './search/extract.js';
import type { Queryable } from './db.js';

/** One resource version ready to commit: the row, its index rows, its audit entry and its outbox entry. */
export interface PreparedWrite {
  resourceType: string;
  id: string;
  versionId: number;
  lastUpdated: Date;
  deleted: boolean;
  owner: string | null;
  patientId: string | null;
  method: 'POST' | 'PUT' | 'DELETE';
  json: string | null;
  index: IndexRows;
  /** True when earlier index rows exist and must be replaced. */
  replacesIndex: boolean;
  audit: AuditRow;
  notify: boolean;
}

export interface AuditRow {
  id: string;
  recorded: Date;
  action: string;
  outcome: string;
  agentOrg: string | null;
  agentClient: string | null;
  owner: string | null;
  patientId: string | null;
  entity: string[];
  purpose: string | null;
  json: string;
}

/**
 * Commits a set of writes with a single SQL statement (data-modifying CTEs over `unnest` arrays), so a
 * write costs one round trip and is atomic even outside an explicit transaction.
 */
export async function commitWrites(
  db: Queryable,
  writes: PreparedWrite[],
  extraAudit: AuditRow[] = [],
  prepared = false,
): Promise<void> {
  if (!writes.length && !extraAudit.length) return;
  const statement = new Statement();
  if (writes.length) {
    addResourceRows(statement, writes);
    addIndexRows(statement, writes);
    addOutboxRows(statement, writes.filter((w) => w.notify));
  }
  addAuditRows(statement, [...writes.map((w) => w.audit), ...extraAudit]);
  await db.query(statement.build(prepared));
}

class Statement {
  private readonly ctes: string[] = [];
  private readonly values: unknown[] = [];

  param(value: unknown, cast: string): string {
    this.values.push(value);
    return `$${this.values.length}::${cast}`;
  }

  cte(name: string, sql: string): void {
    this.ctes.push(`${name} AS (${sql})`);
  }

  /**
   * A named statement is planned once per connection for each shape of write. Not on the embedded store:
   * its connections share one backend session, where a second PREPARE of the same name would fail.
   */
  build(prepared: boolean): pg.QueryConfig {
    const text = `WITH ${this.ctes.join(',\n')} SELECT 1`;
    // PostgreSQL truncates statement names at 63 bytes, so a statement is named by the digest of its text.
    const name = `write_${createHash('sha1').update(text).digest('hex').slice(0, 24)}`;
    return prepared ? { name, text, values: this.values } : { text, values: this.values };
  }
}

function columns<T>(rows: T[], pick: (row: T) => unknown): unknown[] {
  return rows.map(pick);
}

function addResourceRows(s: Statement, writes: PreparedWrite[]): void {
  const cols = [
    s.param(columns(writes, (w) => w.resourceType), 'text[]'),
    s.param(columns(writes, (w) => w.id), 'text[]'),
    s.param(columns(writes, (w) => w.versionId), 'int[]'),
    s.param(columns(writes, (w) => w.lastUpdated.toISOString()), 'timestamptz[]'),
    s.param(columns(writes, (w) => w.deleted), 'bool[]'),
    s.param(columns(writes, (w) => w.owner), 'text[]'),
    s.param(columns(writes, (w) => w.patientId), 'text[]'),
    s.param(columns(writes, (w) => w.json), 'jsonb[]'),
  ];
  const methods = s.param(columns(writes, (w) => w.method), 'text[]');
  s.cte(
    'cur',
    `INSERT INTO resource (resource_type, id, version_id, last_updated, deleted, owner, patient_id, content)
     SELECT * FROM unnest(${cols.join(', ')})
     ON CONFLICT (resource_type, id) DO UPDATE SET version_id = EXCLUDED.version_id, last_updated = EXCLUDED.last_updated,
       deleted = EXCLUDED.deleted, owner = EXCLUDED.owner, patient_id = EXCLUDED.patient_id, content = EXCLUDED.content`,
  );
  s.cte(
    'ver',
    `INSERT INTO resource_version (resource_type, id, version_id, last_updated, deleted, owner, patient_id, content, method)
     SELECT * FROM unnest(${cols.join(', ')}, ${methods})`,
  );
}

const INDEX_TABLES: { table: keyof IndexRows; columns: [string, string][] }[] = [
  { table: 'token', columns: [['system', 'text'], ['value', 'text'], ['text_norm', 'text']] },
  { table: 'string', columns: [['norm', 'text'], ['exact', 'text']] },
  { table: 'date', columns: [['lo', 'timestamptz'], ['hi', 'timestamptz']] },
  { table: 'number', columns: [['value', 'numeric'], ['system', 'text'], ['code', 'text']] },
  { table: 'reference', columns: [['target_type', 'text'], ['target_id', 'text'], ['target', 'text']] },
  { table: 'uri', columns: [['value', 'text']] },
];

const FIELD_OF: Record<string, string> = { text_norm: 'text', target_type: 'targetType', target_id: 'targetId' };

function addIndexRows(s: Statement, writes: PreparedWrite[]): void {
  const replaced = writes.filter((w) => w.replacesIndex);
  const replacedTypes = replaced.length ? s.param(replaced.map((w) => w.resourceType), 'text[]') : '';
  const replacedIds = replaced.length ? s.param(replaced.map((w) => w.id), 'text[]') : '';
  for (const { table, columns: cols } of INDEX_TABLES) {
    if (replaced.length) {
      s.cte(
        `del_${table}`,
        `DELETE FROM sp_${table} t USING unnest(${replacedTypes}, ${replacedIds}) AS u(resource_type, id)
         WHERE t.resource_type = u.resource_type AND t.id = u.id`,
      );
    }
    const rows: Record<string, unknown>[] = writes.flatMap((w) =>
      (w.index[table] as unknown as Record<string, unknown>[]).map((r) => ({ ...r, resourceType: w.resourceType, id: w.id })),
    );
    if (!rows.length) continue;
    const values = [
      s.param(rows.map((r) => r.resourceType), 'text[]'),
      s.param(rows.map((r) => r.id), 'text[]'),
      s.param(rows.map((r) => r.param), 'text[]'),
      ...cols.map(([name, cast]) =>
        s.param(rows.map((r) => toSqlValue(r[FIELD_OF[name] ?? name])), `${cast}[]`),
      ),
    ];
    s.cte(
      `ins_${table}`,
      `INSERT INTO sp_${table} (resource_type, id, param, ${cols.map(([n]) => n).join(', ')})
       SELECT * FROM unnest(${values.join(', ')})`,
    );
  }
}

function toSqlValue(value: unknown): unknown {
  return value instanceof Date ? value.toISOString() : value;
}

function addOutboxRows(s: Statement, writes: PreparedWrite[]): void {
  if (!writes.length) return;
  s.cte(
    'outbox_rows',
    `INSERT INTO outbox (resource_type, id, version_id, action, owner, patient_id)
     SELECT * FROM unnest(${[
       s.param(writes.map((w) => w.resourceType), 'text[]'),
       s.param(writes.map((w) => w.id), 'text[]'),
       s.param(writes.map((w) => w.versionId), 'int[]'),
       s.param(writes.map((w) => (w.deleted ? 'delete' : w.versionId === 1 ? 'create' : 'update')), 'text[]'),
       s.param(writes.map((w) => w.owner), 'text[]'),
       s.param(writes.map((w) => w.patientId), 'text[]'),
     ].join(', ')})`,
  );
}

function addAuditRows(s: Statement, rows: AuditRow[]): void {
  if (!rows.length) return;
  s.cte('audit_rows', auditInsertSql(s, rows));
}

function auditInsertSql(s: Statement, rows: AuditRow[]): string {
  const p = (pick: (r: AuditRow) => unknown, cast: string) => s.param(rows.map(pick), cast);
  return `INSERT INTO audit_event (id, recorded, action, outcome, agent_org, agent_client, owner, patient_id, purpose, content, entity)
     SELECT id, recorded, action, outcome, agent_org, agent_client, owner, patient_id, purpose, content, string_to_array(entity, ' ')
     FROM unnest(${[
       p((r) => r.id, 'text[]'),
       p((r) => r.recorded.toISOString(), 'timestamptz[]'),
       p((r) => r.action, 'text[]'),
       p((r) => r.outcome, 'text[]'),
       p((r) => r.agentOrg, 'text[]'),
       p((r) => r.agentClient, 'text[]'),
       p((r) => r.owner, 'text[]'),
       p((r) => r.patientId, 'text[]'),
       p((r) => r.purpose, 'text[]'),
       p((r) => r.json, 'jsonb[]'),
       p((r) => r.entity.join(' '), 'text[]'),
     ].join(', ')}) AS u(id, recorded, action, outcome, agent_org, agent_client, owner, patient_id, purpose, content, entity)`;
}

/** Audit entries alone (reads, searches): appended in one statement. */
export async function appendAudit(db: Queryable, rows: AuditRow[], prepared = false): Promise<void> {
  await commitWrites(db, [], rows, prepared);
}
