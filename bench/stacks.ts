import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

export interface BenchStack {
  name: 'embedded' | 'servers';
  env: Record<string, string>;
  /** A pg connection string for the bare-insert baseline on the same kind of store. */
  bareUrl(): Promise<{ url: string; close(): Promise<void> }>;
  cleanup(): Promise<void>;
}

export function embeddedStack(): BenchStack {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'renkei-bench-'));
  return {
    name: 'embedded',
    env: { RENKEI_DATA_DIR: path.join(dir, 'gateway'), DATABASE_URL: '', REDIS_URL: '' },
    async bareUrl() {
      const { PGlite } = await import('@electric-sql/pglite');
      const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
      const db = await PGlite.create(path.join(dir, 'bare'));
      const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 32 });
      await server.start();
      const port = server.getServerConn().split(':').pop();
      return {
        url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
        async close() {
          await server.stop();
          await db.close();
        },
      };
    },
    async cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function serverStack(baseUrl: string, redisUrl: string): Promise<BenchStack> {
  const name = `renkei_bench_${Date.now()}`;
  await admin(baseUrl, `CREATE DATABASE ${name}`);
  await admin(baseUrl, `CREATE DATABASE ${name}_bare`);
  const url = (db: string) => {
    const u = new URL(baseUrl);
    u.pathname = `/${db}`;
    return u.toString();
  };
  return {
    name: 'servers',
    env: { DATABASE_URL: url(name), REDIS_URL: redisUrl },
    async bareUrl() {
      return { url: url(`${name}_bare`), close: async () => {} };
    },
    async cleanup() {
      await admin(baseUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin(baseUrl, `DROP DATABASE IF EXISTS ${name}_bare WITH (FORCE)`);
    },
  };
}

async function admin(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

export async function reachable(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.end();
    return true;
  } catch {
    return false;
  }
}
