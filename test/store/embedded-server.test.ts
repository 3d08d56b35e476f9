import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../src/store/db.js';
import { failedAfter } from '../../src/store/session-statements.js';

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

  it('prepares a named statement once for every connection, and passes on what the backend refuses', async () => {
    const clients = await Promise.all([0, 1, 2].map(async () => {
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      return client;
    }));
    try {
      const lookup = (client: pg.Client, id: number) =>
        client.query<{ name: string }>({ name: 'label_by_id', text: 'SELECT name FROM label WHERE id = $1', values: [id] });
      // Each connection prepares it as if the session were its own; the session holds it once.
      for (const [i, client] of clients.entries()) expect((await lookup(client, i + 1)).rows).toEqual([{ name: `label-${i + 1}` }]);
      expect((await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_prepared_statements WHERE name = 'label_by_id'`)).rows[0].n).toBe(1);
      expect((await lookup(clients[0], 7)).rows).toEqual([{ name: 'label-7' }]);

      // A statement the backend refused is not held: the next connection asking for it is refused too.
      const broken = { name: 'broken', text: 'SELEC name FROM label WHERE id = $1', values: [1] };
      await expect(clients[0].query(broken)).rejects.toMatchObject({ code: '42601' });
      await expect(clients[1].query(broken)).rejects.toMatchObject({ code: '42601' });
      // The same name for another text (from a connection that has not prepared it) is the backend's to refuse.
      const other = new pg.Client({ connectionString: db.url });
      await other.connect();
      await expect(other.query({ name: 'label_by_id', text: 'SELECT id FROM label WHERE id = $1', values: [1] }))
        .rejects.toMatchObject({ code: '42P05' });
      await other.end();
      expect((await lookup(clients[1], 3)).rows).toEqual([{ name: 'label-3' }]);
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });
});

describe('an extended-protocol exchange after an error', () => {
  const message = (type: string, body = Buffer.alloc(0)) => {
    const header = Buffer.alloc(5);
    header.write(type, 0, 'latin1');
    header.writeInt32BE(4 + body.length, 1);
    return Buffer.concat([header, body]);
  };

  it('is failed from an ErrorResponse until ReadyForQuery, wherever they fall in an answer', () => {
    const error = message('E', Buffer.from('SERROR\0C42601\0\0'));
    const ready = message('Z', Buffer.from('I'));
    const rows = Buffer.concat([message('1'), message('2'), message('D', Buffer.from([0, 1, 0, 0, 0, 1, 0x41])), message('C', Buffer.from('SELECT 1\0'))]);
    expect(failedAfter(false, rows)).toBe(false);
    expect(failedAfter(false, Buffer.concat([rows, error]))).toBe(true);
    expect(failedAfter(true, Buffer.alloc(0))).toBe(true);
    expect(failedAfter(true, ready)).toBe(false);
    expect(failedAfter(false, Buffer.concat([error, ready]))).toBe(false);
  });
});
