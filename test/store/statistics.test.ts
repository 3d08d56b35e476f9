import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keepStatistics } from '../../src/store/statistics.js';
import { adminClient } from '../support/fhir-client.js';
import { patient } from '../support/resources.js';
import { stackName, startTestStack, type TestStack } from '../support/stack.js';

describe(`store statistics (${stackName})`, () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack();
  });
  afterAll(() => stack?.stop());

  const plannerRows = async () =>
    Number((await stack.gateway.services.db.query<{ reltuples: number }>("SELECT reltuples FROM pg_class WHERE oid = 'resource'::regclass")).rows[0].reltuples);

  it('analyses the store once enough was written, then waits for the next tenth', async () => {
    const keeper = keepStatistics(stack.gateway.services.db, 3_600_000);
    try {
      expect(await keeper.check(), 'an almost empty store').toBe(false);
      const admin = adminClient(stack);
      for (let b = 0; b < 6; b++) {
        const entry = Array.from({ length: 100 }, (_, i) => ({ resource: patient(`STAT-${b}-${i}`), request: { method: 'POST', url: 'Patient' } }));
        expect((await admin.post('', { resourceType: 'Bundle', type: 'transaction', entry })).status).toBe(200);
      }
      expect(await keeper.check()).toBe(true);
      expect(await plannerRows()).toBeGreaterThanOrEqual(600);
      expect(await keeper.check(), 'nothing written since').toBe(false);
    } finally {
      keeper.stop();
    }
  });
});
