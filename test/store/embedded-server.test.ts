import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../src/store/db.js';

/** The embedded store is one PGlite session shared by many `pg` connections over a loopback socket. */
describe.skipIf(Boolean(process.env.DATABASE_URL))('embedded store server', () => {
  let dir: string;
  let db: Database;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'renkei-embedded-'));
    db = await openDatabase({ dataDir: dir, poolSize: 12 });
    await db.query('CREATE TABLE item (id text PRIMARY KEY, body jsonb NOT NULL)');
    await db.query('CREATE TABLE label (id integer PRIMARY KEY, name text NOT NULL)');
    await db.query(`INSERT INTO label SELECT i, 'label-' || i FROM generate_series(1, 50) i`);
  });
  afterAll(async () => {
    await db?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps concurrent parameterised queries and transactions of different connections apart', async () => {
    let wrong = 0;
    const big = 'あ'.repeat(40_000); // large enough for a message to arrive in several socket chunks
    const writers = Array.from({ length: 6 }, async (_, w) => {
      for (let i = 0; i < 40; i++) {
        await db.transaction(async (tx) => {
          await tx.query('INSERT INTO item (id, body) VALUES ($1, $2)', [`${w}-${i}`, JSON.stringify({ w, i, big })]);
          const { rows } = await tx.query<{ n: number }>('SELECT count(*)::int AS n FROM item WHERE id = $1', [`${w}-${i}`]);
          if (rows[0].n !== 1) wrong++;
        });
      }
    });
    const readers = Array.from({ length: 5 }, async (_, r) => {
      for (let i = 0; i < 200; i++) {
        const id = ((r * 200 + i) % 50) + 1;
        const { rows } = await db.query<{ name: string }>('SELECT name FROM label WHERE id = $1', [id]);
        if (rows[0]?.name !== `label-${id}`) wrong++;
      }
    });
    await Promise.all([...writers, ...readers]);
    expect(wrong).toBe(0);
    const { rows } = await db.query<{ n: number; chars: number }>('SELECT count(*)::int AS n, min(length(body->>\'big\')) AS chars FROM item');
    expect(rows[0]).toEqual({ n: 240, chars: 40_000 });
  });

  it('rolls back the transaction of a client that disconnects inside it, and serves the others on', async () => {
    const leaver = new pg.Client({ connectionString: db.url });
    leaver.on('error', () => {}); // the abrupt disconnect below is the point of the test
    await leaver.connect();
    await leaver.query('BEGIN');
    await leaver.query('INSERT INTO label (id, name) VALUES ($1, $2)', [999, 'never committed']);
    const waiting = db.query<{ n: number }>('SELECT count(*)::int AS n FROM label WHERE id = $1', [999]);
    leaver.connection.stream.destroy();
    expect((await waiting).rows[0].n).toBe(0);
    expect((await db.query('SELECT 1 AS ok')).rows[0].ok).toBe(1);
  });
});
