import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { loadConfig, type Config } from '../../src/config.js';
import { dropQueueKeys } from '../../src/exchange/queues.js';
import { startGateway, type Gateway } from '../../src/gateway.js';

export const ADMIN_TOKEN = 'test-admin-token';

/** Which stack the suite runs on: servers when DATABASE_URL is set (as .ci/run does), embedded otherwise. */
export const stackName = process.env.DATABASE_URL ? 'servers' : 'embedded';

export interface TestStack {
  gateway: Gateway;
  url: string;
  config: Config;
  stop(): Promise<void>;
}

/**
 * A gateway on its own fresh store: a new database on the PostgreSQL server, or a new PGlite folder.
 * Each test file gets one, so files run in parallel without seeing each other's data.
 */
export async function startTestStack(overrides: Record<string, string> = {}): Promise<TestStack> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: '0',
    HOST: '127.0.0.1',
    MLLP_PORT: '0',
    RENKEI_ADMIN_TOKEN: ADMIN_TOKEN,
    RENKEI_ALLOW_PRIVATE_ENDPOINTS: 'true',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent',
    ...overrides,
  };
  let cleanup: () => Promise<void>;
  if (process.env.DATABASE_URL) {
    const dbName = `renkei_test_${randomBytes(6).toString('hex')}`;
    await adminQuery(process.env.DATABASE_URL, `CREATE DATABASE ${dbName}`);
    // Test databases are thrown away: no need to wait for each commit to reach the disk.
    await adminQuery(process.env.DATABASE_URL, `ALTER DATABASE ${dbName} SET synchronous_commit = off`);
    const url = new URL(process.env.DATABASE_URL);
    url.pathname = `/${dbName}`;
    env.DATABASE_URL = url.toString();
    cleanup = () => adminQuery(process.env.DATABASE_URL!, `DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  } else {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'renkei-test-'));
    env.RENKEI_DATA_DIR = dir;
    delete env.DATABASE_URL;
    cleanup = async () => rmSync(dir, { recursive: true, force: true });
  }
  const config = loadConfig(env);
  const gateway = await startGateway(config);
  return {
    gateway,
    url: gateway.url,
    config,
    async stop() {
      await gateway.close();
      await cleanup();
      if (config.redisUrl) await dropQueueKeys(config.redisUrl, config.exchange.queuePrefix);
    },
  };
}

async function adminQuery(databaseUrl: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}
