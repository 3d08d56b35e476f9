import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { dropQueueKeys } from '../src/exchange/queues.js';
import { openDatabase } from '../src/store/db.js';

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
      // A second embedded store, served the same way the gateway's is.
      const db = await openDatabase({ dataDir: path.join(dir, 'bare'), poolSize: 1 });
      return { url: db.url, close: () => db.close() };
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
      await dropQueueKeys(redisUrl, `renkei:${name}`); // the gateway's default prefix for this database
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

/**
 * Runs one benchmark part on each stack of BENCH_STACKS (servers only where PostgreSQL answers), each on
 * its own fresh store and port, for a part's standalone entry.
 */
export async function onEachStack<R>(firstPort: number, run: (stack: BenchStack, port: number) => Promise<R>): Promise<R[]> {
  const pgUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const redisUrl = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
  const reports: R[] = [];
  let port = firstPort;
  for (const name of (process.env.BENCH_STACKS ?? 'embedded,servers').split(',')) {
    const stack = name === 'embedded' ? embeddedStack() : (await reachable(pgUrl)) ? await serverStack(pgUrl, redisUrl) : undefined;
    if (!stack) continue;
    try {
      reports.push(await run(stack, port++));
    } finally {
      await stack.cleanup();
    }
  }
  return reports;
}
