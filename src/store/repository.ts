import type { Database, Queryable } from './db.js';
import { linkedPatientsSql } from '../consent/patient-links.js';
import { visibilitySql, type Viewer } from './access.js';
import { SqlParams } from './sql.js';
import { STORED_COLUMNS, toStored, type StoredResource, type StoredRow } from './stored.js';
import { appendAudit, commitWrites, type AuditRow, type PreparedWrite } from './write-batch.js';
import { timed } from '../metrics.js';
import { GroupCommit } from './group-commit.js';

export interface HistoryQuery {
  resourceType?: string;
  id?: string;
  since?: Date;
  at?: Date;
  count: number;
  offset: number;
}

/** Reads and writes resource rows. Access rules come in as a Viewer and are applied inside the SQL. */
export class Repository {
  /** Writes made outside a transaction, committed together with those of concurrent requests. */
  private readonly groupCommit: GroupCommit;

  constructor(readonly db: Database) {
    this.groupCommit = new GroupCommit((writes) => timed('write', () => commitWrites(db, writes)));
  }


  async read(type: string, id: string, viewer: Viewer, q: Queryable = this.db): Promise<StoredResource | undefined> {
    return timed('read', async () => {
      const params = new SqlParams();
      const sql = `SELECT ${STORED_COLUMNS} FROM resource r
        WHERE r.resource_type = ${params.add(type)} AND r.id = ${params.add(id)} AND ${visibilitySql(viewer, 'r', params)}`;
      const { rows } = await q.query<StoredRow>(sql, params.values);
      return rows[0] && toStored(rows[0]);
    });
  }

  async readVersion(type: string, id: string, versionId: number, viewer: Viewer, q: Queryable = this.db): Promise<StoredResource | undefined> {
    return timed('vread', async () => {
      const params = new SqlParams();
      const sql = `SELECT ${STORED_COLUMNS}, method FROM resource_version r
        WHERE r.resource_type = ${params.add(type)} AND r.id = ${params.add(id)} AND r.version_id = ${params.add(versionId)}
          AND ${visibilitySql(viewer, 'r', params)}`;
      const { rows } = await q.query<StoredRow>(sql, params.values);
      return rows[0] && toStored(rows[0]);
    });
  }

  /** The current row, locked until the transaction ends; no access filter (callers decide). */
  async lockCurrent(q: Queryable, type: string, id: string): Promise<StoredResource | undefined> {
    const { rows } = await q.query<StoredRow>(
      `SELECT ${STORED_COLUMNS} FROM resource WHERE resource_type = $1 AND id = $2 FOR UPDATE`,
      [type, id],
    );
    return rows[0] && toStored(rows[0]);
  }

  async history(query: HistoryQuery, viewer: Viewer): Promise<{ rows: StoredResource[]; total: number }> {
    return timed('history', async () => {
      const params = new SqlParams();
      const where = [visibilitySql(viewer, 'r', params)];
      if (query.resourceType) where.push(`r.resource_type = ${params.add(query.resourceType)}`);
      if (query.id) where.push(`r.id = ${params.add(query.id)}`);
      if (query.since) where.push(`r.last_updated > ${params.add(query.since.toISOString())}`);
      if (query.at) where.push(`r.last_updated <= ${params.add(query.at.toISOString())}`);
      const condition = where.join(' AND ');
      const countParams = params.values.slice();
      const sql = `SELECT ${STORED_COLUMNS}, method FROM resource_version r WHERE ${condition}
        ORDER BY r.last_updated DESC, r.resource_type, r.id, r.version_id DESC
        LIMIT ${params.add(query.count)} OFFSET ${params.add(query.offset)}`;
      const [page, count] = await Promise.all([
        this.db.query<StoredRow>(sql, params.values),
        this.db.query<{ total: number }>(`SELECT count(*) AS total FROM resource_version r WHERE ${condition}`, countParams),
      ]);
      return { rows: page.rows.map(toStored), total: count.rows[0].total };
    });
  }

  /** Everything in the compartments of a patient and its linked records (and those Patients) the viewer may see, by type. */
  async compartment(patientId: string, viewer: Viewer, count: number, offset: number): Promise<{ rows: StoredResource[]; total: number }> {
    return timed('compartment', async () => {
      const params = new SqlParams();
      const where = `r.patient_id IN (${linkedPatientsSql(params.add(patientId))})
        AND NOT r.deleted AND ${visibilitySql(viewer, 'r', params)}`;
      const countValues = params.values.slice();
      const [page, total] = await Promise.all([
        this.db.query<StoredRow>(`SELECT ${STORED_COLUMNS} FROM resource r WHERE ${where}
          ORDER BY r.resource_type <> 'Patient', r.resource_type, r.last_updated DESC, r.id
          LIMIT ${params.add(count)} OFFSET ${params.add(offset)}`, params.values),
        this.db.query<{ total: number }>(`SELECT count(*) AS total FROM resource r WHERE ${where}`, countValues),
      ]);
      return { rows: page.rows.map(toStored), total: total.rows[0].total };
    });
  }

  async commit(writes: PreparedWrite[], q: Queryable = this.db): Promise<void> {
    if (q === this.db) return this.groupCommit.submit(writes);
    await timed('write', () => commitWrites(q, writes));
  }

  async appendAudit(rows: AuditRow[], q: Queryable = this.db): Promise<void> {
    await timed('audit', () => appendAudit(q, rows));
  }
}
