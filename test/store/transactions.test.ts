import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/store/db.js';
import { stackName, startTestStack, type TestStack } from '../support/stack.js';

describe(`transactions sent at once (${stackName})`, () => {
  let stack: TestStack;
  let db: Database;
  const count = async () => Number((await db.query<{ n: number }>('SELECT count(*) AS n FROM tx_probe')).rows[0].n);

  beforeAll(async () => {
    stack = await startTestStack();
    db = stack.gateway.services.db;
    await db.query('CREATE TABLE tx_probe (n int PRIMARY KEY)');
  });
  afterAll(async () => {
    await db?.query('DROP TABLE IF EXISTS tx_probe');
    await stack?.stop();
  });

  it('commits the statements sent with it and hands back their answers', async () => {
    const answer = await db.transaction(async (tx) => {
      const first = tx.query('INSERT INTO tx_probe VALUES ($1) RETURNING n', [1]);
      const second = tx.query('INSERT INTO tx_probe VALUES ($1) RETURNING n', [2]);
      return (await Promise.all([first, second])).map((r) => r.rows[0].n);
    }, { atOnce: true });
    expect(answer).toEqual([1, 2]);
    expect(await count()).toBe(2);
  });

  it('rolls every statement back when one fails, and throws that failure', async () => {
    const failing = db.transaction(async (tx) => {
      const inserted = tx.query('INSERT INTO tx_probe VALUES ($1)', [3]);
      const duplicate = tx.query('INSERT INTO tx_probe VALUES ($1)', [1]);
      const after = tx.query('INSERT INTO tx_probe VALUES ($1)', [4]);
      await Promise.all([inserted, duplicate, after]);
    }, { atOnce: true });
    await expect(failing).rejects.toThrow(/duplicate key/);
    expect(await count()).toBe(2);
  });

  it('refuses a statement sent after its first await (the COMMIT has gone)', async () => {
    const late = db.transaction(async (tx) => {
      await tx.query('INSERT INTO tx_probe VALUES ($1)', [5]);
      await tx.query('INSERT INTO tx_probe VALUES ($1)', [6]);
    }, { atOnce: true });
    await expect(late).rejects.toThrow(/no statement after its first await/);
    expect((await db.query('SELECT n FROM tx_probe ORDER BY n')).rows.map((r) => r.n)).toEqual([1, 2, 5]);
  });
});
