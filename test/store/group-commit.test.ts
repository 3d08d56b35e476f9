import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareVersion } from '../../src/fhir/prepare.js';
import { openDatabase, type Database } from '../../src/store/db.js';
import { migrate } from '../../src/store/migrate.js';
import { Repository } from '../../src/store/repository.js';
import { patient } from '../support/resources.js';
import { stackName } from '../support/stack.js';

describe(`group commit of concurrent writes (${stackName})`, () => {
  let db: Database;
  let repo: Repository;
  let cleanup: () => Promise<void>;
  const caller = { admin: false, organizationId: 'gc-clinic', clientId: 'gc-client' };
  const write = (id: string, versionId = 1) =>
    prepareVersion(patient(`GC-${id}`), { id, versionId, owner: 'gc-clinic', caller, method: 'POST', replacesIndex: false }).write;

  beforeAll(async () => {
    if (process.env.DATABASE_URL) {
      const name = `renkei_test_${randomBytes(6).toString('hex')}`;
      const admin = new pg.Client({ connectionString: process.env.DATABASE_URL });
      await admin.connect();
      await admin.query(`CREATE DATABASE ${name}`);
      await admin.end();
      const url = new URL(process.env.DATABASE_URL);
      url.pathname = `/${name}`;
      db = await openDatabase({ databaseUrl: url.toString(), dataDir: '', poolSize: 8 });
      cleanup = async () => {
        const c = new pg.Client({ connectionString: process.env.DATABASE_URL });
        await c.connect();
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await c.end();
      };
    } else {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'renkei-gc-'));
      db = await openDatabase({ dataDir: dir, poolSize: 8 });
      cleanup = async () => rmSync(dir, { recursive: true, force: true });
    }
    await migrate(db);
    repo = new Repository(db);
  });
  afterAll(async () => {
    await db?.close();
    await cleanup?.();
  });

  it('commits many concurrent writes, each exactly once', async () => {
    const ids = Array.from({ length: 120 }, () => randomUUID());
    await Promise.all(ids.map((id) => repo.commit([write(id)])));
    const { rows } = await db.query<{ n: number; versions: number; audits: number; outbox: number }>(
      `SELECT (SELECT count(*)::int FROM resource WHERE id = ANY($1)) AS n,
              (SELECT count(*)::int FROM resource_version WHERE id = ANY($1)) AS versions,
              (SELECT count(*)::int FROM audit_event WHERE agent_org = 'gc-clinic') AS audits,
              (SELECT count(*)::int FROM outbox WHERE id = ANY($1)) AS outbox`, [ids]);
    expect(rows[0]).toEqual({ n: 120, versions: 120, audits: 120, outbox: 120 });
  });

  it('fails only the bad write when it was grouped with good ones', async () => {
    const taken = randomUUID();
    await repo.commit([write(taken)]);
    const good = Array.from({ length: 30 }, () => randomUUID());
    const results = await Promise.allSettled([
      ...good.map((id) => repo.commit([write(id)])),
      repo.commit([write(taken)]), // version 1 of this resource exists already
      ...good.map(() => repo.commit([write(randomUUID())])),
    ]);
    const rejected = results.filter((r) => r.status === 'rejected');
    expect(rejected).toHaveLength(1);
    const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM resource_version WHERE id = $1', [taken]);
    expect(rows[0].n).toBe(1);
    const stored = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM resource WHERE id = ANY($1)', [good]);
    expect(stored.rows[0].n).toBe(30);
  });
});
