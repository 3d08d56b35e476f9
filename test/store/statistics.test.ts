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

  it('analyses the store once enough was written, then waits for the next tenth', async () => {
    expect(await keeper.check(), 'nothing written yet').toBe(false);
    const admin = adminClient(stack);
    for (let b = 0; b < 6; b++) {
      const entry = Array.from({ length: 100 }, (_, i) => ({ resource: patient(`STAT-${b}-${i}`), request: { method: 'POST', url: 'Patient' } }));
      expect((await admin.post('', { resourceType: 'Bundle', type: 'transaction', entry })).status).toBe(200);
    }
    await analysedUntil('resource', 600);
    expect(await keeper.check(), 'nothing written since').toBe(false);
  });

  it('analyses the notifications table when only notifications were written (as a worker process writes them)', async () => {
    await stack.gateway.services.db.query(
      `INSERT INTO delivery (subscription_id, kind, status) SELECT 'stat-' || n, 'heartbeat', 'delivered' FROM generate_series(1, 1200) n`);
    await analysedUntil('delivery', 1200);
  });
});
