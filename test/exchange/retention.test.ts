import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pruneExchange } from '../../src/exchange/retention.js';
import { stackName, startTestStack, type TestStack } from '../support/stack.js';

describe(`exchange retention (${stackName})`, () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startTestStack({ RENKEI_WORKERS: 'off', RENKEI_RELAY: 'off' });
  });
  afterAll(() => stack?.stop());

  const remaining = async (table: 'delivery' | 'outbox', column: string, tag: string) =>
    (await stack.gateway.services.db.query<{ v: string }>(`SELECT ${column} AS v FROM ${table} WHERE ${table === 'delivery' ? 'subscription_id' : 'id'} LIKE $1 ORDER BY 1`, [`${tag}%`]))
      .rows.map((r) => r.v);

  it('deletes ended notifications and matched changes past the retention; keeps pending ones, dead letters and recent history', async () => {
    const { db } = stack.gateway.services;
    await db.query(`INSERT INTO delivery (subscription_id, kind, status, updated_at) VALUES
      ('ret-old-delivered', 'heartbeat', 'delivered', now() - interval '40 days'),
      ('ret-old-withheld', 'heartbeat', 'withheld', now() - interval '40 days'),
      ('ret-old-cancelled', 'heartbeat', 'cancelled', now() - interval '40 days'),
      ('ret-old-pending', 'heartbeat', 'pending', now() - interval '40 days'),
      ('ret-old-dead', 'heartbeat', 'dead', now() - interval '40 days'),
      ('ret-new-delivered', 'heartbeat', 'delivered', now() - interval '2 days')`);
    await db.query(`INSERT INTO outbox (created_at, resource_type, id, version_id, action, relayed_at, matched_at) VALUES
      (now() - interval '40 days', 'Observation', 'ret-old-matched', 1, 'create', now() - interval '40 days', now() - interval '40 days'),
      (now() - interval '40 days', 'Observation', 'ret-old-unmatched', 1, 'create', now() - interval '40 days', NULL),
      (now() - interval '40 days', 'Observation', 'ret-old-unrelayed', 1, 'create', NULL, NULL),
      (now() - interval '2 days', 'Observation', 'ret-new-matched', 1, 'create', now() - interval '2 days', now() - interval '2 days')`);

    expect(await pruneExchange(db, 0), 'retention 0 keeps everything').toEqual({ deliveries: 0, changes: 0 });
    expect(await pruneExchange(db, 30)).toEqual({ deliveries: 3, changes: 1 });
    expect(await remaining('delivery', 'subscription_id', 'ret-')).toEqual(['ret-new-delivered', 'ret-old-dead', 'ret-old-pending']);
    expect(await remaining('outbox', 'id', 'ret-')).toEqual(['ret-new-matched', 'ret-old-unmatched', 'ret-old-unrelayed']);
    expect(await pruneExchange(db, 30), 'a second run finds nothing').toEqual({ deliveries: 0, changes: 0 });
  });
});
