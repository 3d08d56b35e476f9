import type { IndexRows } from './search/extract.js';
import type { Queryable } from './db.js';
import { entryDigest, storedInstant } from '../audit/entry-digest.js';
import type { ConsentGrant } from '../consent/grants.js';

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
  /** For a Consent: the grants it makes now (none when inactive or deleted); they replace its earlier ones. */
  grants?: ConsentGrant[];
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
): Promise<void> {
  if (!writes.length && !extraAudit.length) return;
  const statement = new Statement();
  if (writes.length) {
    addResourceRows(statement, writes);
    addIndexRows(statement, writes);
    addOutboxRows(statement, writes.filter((w) => w.notify));
    addConsentGrants(statement, writes.filter((w) => w.resourceType === 'Consent'));
  }
  addAuditRows(statement, [...writes.map((w) => w.audit), ...extraAudit]);
  const { text, values } = statement.build();
  await db.query(text, values);
}

class Statement {
  private readonly ctes: string[] = [];
  private readonly values: unknown[] = [];

  /** Rows travel as one JSON array per table: far cheaper to serialise than one SQL array per column. */
  rows(json: string): string {
    this.values.push(json);
    return `$${this.values.length}::json`;
  }

  /**
   * Keys as a plain array parameter, for `= ANY(…)` on an indexed column: a joined row set (json_to_recordset)
   * is guessed at 100 rows, and against a table of a few thousand rows the planner would then read the
   * whole table to delete the rows of one resource.
   */
  keys(values: string[]): string {
    this.values.push(values);
    return `$${this.values.length}::text[]`;
  }

  /** Bytes sent as they are (a Buffer goes in binary form): nothing for the server to parse. */
  bytes(value: Buffer): string {
    this.values.push(value);
    return `$${this.values.length}::bytea`;
  }

  cte(name: string, sql: string): void {
    this.ctes.push(`${name} AS (${sql})`);
  }

  /** One text per shape of write, so the store prepares it once per connection (see prepared.ts). */
  build(): { text: string; values: unknown[] } {
    return { text: `WITH ${this.ctes.join(',\n')} SELECT 1`, values: this.values };
  }
}

const str = (value: string | null) => (value === null ? 'null' : JSON.stringify(value));

function addResourceRows(s: Statement, writes: PreparedWrite[]): void {
  // The resource JSON is already serialised: it is spliced in as is, not escaped again.
  const json = `[${writes.map((w) =>
    `{"t":${str(w.resourceType)},"id":${str(w.id)},"v":${w.versionId},"lu":"${w.lastUpdated.toISOString()}",` +
    `"del":${w.deleted},"own":${str(w.owner)},"pat":${str(w.patientId)},"m":"${w.method}","c":${w.json ?? 'null'}}`).join(',')}]`;
  s.cte('rows', `SELECT * FROM json_to_recordset(${s.rows(json)})
     AS x(t text, id text, v int, lu timestamptz, del bool, own text, pat text, m text, c jsonb)`);
  s.cte(
    'cur',
    `INSERT INTO resource (resource_type, id, version_id, last_updated, deleted, owner, patient_id, content)
     SELECT t, id, v, lu, del, own, pat, c FROM rows
     ON CONFLICT (resource_type, id) DO UPDATE SET version_id = EXCLUDED.version_id, last_updated = EXCLUDED.last_updated,
       deleted = EXCLUDED.deleted, owner = EXCLUDED.owner, patient_id = EXCLUDED.patient_id, content = EXCLUDED.content`,
  );
  s.cte(
    'ver',
    `INSERT INTO resource_version (resource_type, id, version_id, last_updated, deleted, owner, patient_id, content, method)
     SELECT t, id, v, lu, del, own, pat, c, m FROM rows`,
  );
}

/** Index tables, their value columns and the field of an index row that fills each. */
const INDEX_TABLES: { table: keyof IndexRows; columns: [column: string, type: string, field: string][] }[] = [
  { table: 'token', columns: [['system', 'text', 'system'], ['value', 'text', 'value'], ['text_norm', 'text', 'text']] },
  { table: 'string', columns: [['norm', 'text', 'norm'], ['exact', 'text', 'exact']] },
  { table: 'date', columns: [['lo', 'timestamptz', 'lo'], ['hi', 'timestamptz', 'hi']] },
  { table: 'number', columns: [['value', 'numeric', 'value'], ['system', 'text', 'system'], ['code', 'text', 'code']] },
  { table: 'reference', columns: [['target_type', 'text', 'targetType'], ['target_id', 'text', 'targetId'], ['target', 'text', 'target']] },
  { table: 'uri', columns: [['value', 'text', 'value']] },
];

function addIndexRows(s: Statement, writes: PreparedWrite[]): void {
  const replaced = writes.filter((w) => w.replacesIndex);
  // The (resource_type, id) index finds every type × id pair; the exact pairs are then kept.
  const replacedKeys = replaced.length
    ? `t.resource_type = ANY(${s.keys([...new Set(replaced.map((w) => w.resourceType))])}) AND t.id = ANY(${s.keys([...new Set(replaced.map((w) => w.id))])})
         AND t.resource_type || '/' || t.id = ANY(${s.keys(replaced.map((w) => `${w.resourceType}/${w.id}`))})`
    : '';
  for (const { table, columns: cols } of INDEX_TABLES) {
    if (replaced.length) s.cte(`del_${table}`, `DELETE FROM sp_${table} t WHERE ${replacedKeys}`);
    const parts: string[] = [];
    for (const w of writes) {
      const rows = w.index[table] as unknown as Record<string, unknown>[];
      if (!rows.length) continue;
      // Each index row is serialised as is; the owning resource's type and id are added alongside.
      const owner = `"_t":${str(w.resourceType)},"_id":${str(w.id)},`;
      for (const row of rows) parts.push(`{${owner}${JSON.stringify(row).slice(1)}`);
    }
    if (!parts.length) continue;
    const fields = cols.map(([, type, field]) => `"${field}" ${type}`).join(', ');
    s.cte(
      `ins_${table}`,
      `INSERT INTO sp_${table} (resource_type, id, param, ${cols.map(([column]) => column).join(', ')})
       SELECT "_t", "_id", param, ${cols.map(([, , field]) => `"${field}"`).join(', ')}
       FROM json_to_recordset(${s.rows(`[${parts.join(',')}]`)}) AS x("_t" text, "_id" text, param text, ${fields})`,
    );
  }
}

function addOutboxRows(s: Statement, writes: PreparedWrite[]): void {
  if (!writes.length) return;
  const rows = writes.map((w) => ({
    t: w.resourceType, id: w.id, v: w.versionId, a: w.deleted ? 'delete' : w.versionId === 1 ? 'create' : 'update',
    own: w.owner, pat: w.patientId,
  }));
  s.cte(
    'outbox_rows',
    `INSERT INTO outbox (resource_type, id, version_id, action, owner, patient_id)
     SELECT t, id, v, a, own, pat FROM json_to_recordset(${s.rows(JSON.stringify(rows))})
       AS x(t text, id text, v int, a text, own text, pat text)`,
  );
}

function addConsentGrants(s: Statement, consents: PreparedWrite[]): void {
  if (!consents.length) return;
  s.cte('del_grants', `DELETE FROM consent_grant g WHERE g.consent_id = ANY(${s.keys(consents.map((w) => w.id))})`);
  const grants = consents.flatMap((w) => w.grants ?? []);
  if (!grants.length) return;
  // Rows carry the table's column names, so the grant model can grow without touching this statement.
  s.cte('ins_grants', `INSERT INTO consent_grant SELECT * FROM json_populate_recordset(NULL::consent_grant, ${s.rows(JSON.stringify(grants))})`);
}

function addAuditRows(s: Statement, rows: AuditRow[]): void {
  if (!rows.length) return;
  // The contents (about 2 KB each for a notification) travel apart, as one run of UTF-8 bytes cut by
  // offset: inside the JSON array the server's parser walked every token of them with its record
  // callbacks, a tenth of its time in a fan-out of notifications.
  const contents = rows.map((r) => Buffer.from(r.json));
  let offset = 1;
  const json = `[${rows.map((r, i) => {
    const length = contents[i].length;
    const fields = `{"id":${str(r.id)},"rec":"${r.recorded.toISOString()}","act":${str(r.action)},"out":${str(r.outcome)},` +
      `"ao":${str(r.agentOrg)},"ac":${str(r.agentClient)},"own":${str(r.owner)},"pat":${str(r.patientId)},` +
      `"pur":${str(r.purpose)},"ent":${JSON.stringify(r.entity)},"dig":"${digestOf(r)}","o":${offset},"l":${length}}`;
    offset += length;
    return fields;
  }).join(',')}]`;
  const bytes = s.bytes(Buffer.concat(contents));
  s.cte(
    'audit_rows',
    `INSERT INTO audit_event (id, recorded, action, outcome, agent_org, agent_client, owner, patient_id, purpose, content, entity, digest)
     SELECT id, rec, act, out, ao, ac, own, pat, pur, convert_from(substring(${bytes} FROM o FOR l), 'UTF8')::json,
       ARRAY(SELECT json_array_elements_text(ent)), dig
     FROM json_to_recordset(${s.rows(json)})
       AS x(id text, rec timestamptz, act text, out text, ao text, ac text, own text, pat text, pur text, ent json, dig text, o int, l int)`,
  );
}

/** The digest the hash chain seals an entry by, over its columns as the store will give them back. */
const digestOf = (r: AuditRow) => entryDigest({
  id: r.id, recorded_at: storedInstant(r.recorded), action: r.action, outcome: r.outcome, agent_org: r.agentOrg,
  agent_client: r.agentClient, owner: r.owner, patient_id: r.patientId, entity: r.entity, purpose: r.purpose, content: r.json,
});

/** Audit entries alone (reads, searches): appended in one statement. */
export async function appendAudit(db: Queryable, rows: AuditRow[]): Promise<void> {
  await commitWrites(db, [], rows);
}
