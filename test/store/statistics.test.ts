import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keepStatistics, type StatisticsKeeper } from '../../src/store/statistics.js';
import { adminClient } from '../support/fhir-client.js';
import { patient } from '../support/resources.js';
import { stackName, startTestStack, type TestStack } from '../support/stack.js';

describe(`store statistics (${stackName})`, () => {
  let stack: TestStack;
  let keeper: StatisticsKeeper;
  beforeAll(async () => {
    stack = await startTestStack();
    keeper = keepStatistics(stack.gateway.services.db, 3_600_000);
    await keeper.check(); // whatever the migrations and seeds left
  });
  afterAll(async () => {
    keeper?.stop();
    await stack?.stop();
  });

  const plannerRows = async (table: string) =>
    Number((await stack.gateway.services.db.query<{ reltuples: number }>('SELECT reltuples FROM pg_class WHERE oid = $1::regclass', [table])).rows[0].reltuples);

  /** Looks until the planner knows `rows` rows of the table (the gateway's own keeper may be the one that analyses). */
  async function analysedUntil(table: string, rows: number): Promise<void> {
    for (let i = 0; i < 150 && (await plannerRows(table)) < rows; i++) {
      await keeper.check();
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(await plannerRows(table)).toBeGreaterThanOrEqual(rows);
  }

  /**
   * On a server, waits until the backends have reported their changes to the table (PostgreSQL flushes a
   * backend's table counters up to seconds after its transactions): changes reported after an ANALYZE
   * count as changed since, and the keeper would rightly look at the table again.
   */
  async function changesReported(table: string, inserted: number, updated = 0): Promise<void> {
    if (stack.gateway.services.db.embedded) return;
    const reported = async () => (await stack.gateway.services.db.query<{ ins: number; upd: number }>(
      'SELECT n_tup_ins AS ins, n_tup_upd AS upd FROM pg_stat_user_tables WHERE relid = $1::regclass', [table])).rows[0];
    const done = async () => {
      const r = await reported();
      return Number(r.ins) >= inserted && Number(r.upd) >= updated;
    };
    for (let i = 0; i < 300 && !(await done()); i++) await new Promise((r) => setTimeout(r, 100));
    expect(await done(), `${table}: changes reported`).toBe(true);
  }

  it('analyses the store once enough was written, then waits for the next tenth', async () => {
    expect(await keeper.check(), 'nothing written yet').toBe(false);
    const admin = adminClient(stack);
    const written = async (from: number, count: number) => {
      for (let b = from; b < from + count; b += 100) {
        const entry = Array.from({ length: Math.min(100, from + count - b) }, (_, i) => ({
          resource: patient(`STAT-${b + i}`), request: { method: 'POST', url: 'Patient' },
        }));
        expect((await admin.post('', { resourceType: 'Bundle', type: 'transaction', entry })).status).toBe(200);
      }
      const total = from + count;
      for (const table of ['resource', 'resource_version', 'sp_token', 'sp_string', 'audit_event']) await changesReported(table, total);
      await changesReported('outbox', total, total); // each change is also marked relayed
    };
    await written(0, 600);
    await analysedUntil('resource', 600);
    // The gateway's own keeper may have analysed some tables before the others' counters were in.
    for (let i = 0; i < 20 && (await keeper.check()); i++) await new Promise((r) => setTimeout(r, 100));
    expect(await keeper.check(), 'nothing written since').toBe(false);
    await written(600, 40);
    expect(await keeper.check(), 'less than 500 rows and a tenth written since').toBe(false);
  });

  it('analyses the notifications table when only notifications were written (as a worker process writes them)', async () => {
    await stack.gateway.services.db.query(
      `INSERT INTO delivery (subscription_id, kind, status) SELECT 'stat-' || n, 'heartbeat', 'delivered' FROM generate_series(1, 1200) n`);
    await analysedUntil('delivery', 1200);
  });
});
