import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { ADMIN_TOKEN, type TestStack } from '../support/stack.js';
import { dropQueueKeys } from '../../src/exchange/queues.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A store of its own for a test that runs gateway processes: a PGlite folder, or a new database. */
export async function freshStore(): Promise<{ env: Record<string, string>; cleanup(): Promise<void> }> {
  const base = process.env.DATABASE_URL;
  if (!base) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'renkei-fault-'));
    return { env: { RENKEI_DATA_DIR: dir, DATABASE_URL: '', REDIS_URL: '' }, cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  const name = `renkei_fault_${randomBytes(6).toString('hex')}`;
  await adminQuery(base, `CREATE DATABASE ${name}`);
  const url = new URL(base);
  url.pathname = `/${name}`;
  return {
    env: { DATABASE_URL: url.toString(), REDIS_URL: process.env.REDIS_URL ?? '' },
    cleanup: async () => {
      await adminQuery(base, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      if (process.env.REDIS_URL) await dropQueueKeys(process.env.REDIS_URL, `renkei:${name}`); // the default prefix for this database
    },
  };
}

async function adminQuery(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** `renkei serve` or `renkei worker` as a process of its own, as deployed. */
export class RenkeiProcess {
  /** For serve: where it listens, in the shape the FHIR test client takes. */
  stack?: TestStack;
  /** For worker: its /healthz, /readyz and /metrics listener. */
  operationsUrl?: string;
  private readonly exited: Promise<void>;
  private readonly lines: string[] = [];

  private constructor(readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    let buffer = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      const parts = buffer.split('\n');
      buffer = parts.pop()!;
      this.lines.push(...parts);
    });
    child.stderr!.on('data', (chunk: Buffer) => this.lines.push(chunk.toString('utf8')));
  }

  static async start(command: 'serve' | 'worker', env: Record<string, string>): Promise<RenkeiProcess> {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', command], {
      cwd: ROOT,
      env: {
        ...process.env, PORT: '0', HOST: '127.0.0.1', RENKEI_ADMIN_TOKEN: ADMIN_TOKEN, RENKEI_ALLOW_PRIVATE_ENDPOINTS: 'true',
        MLLP_PORT: '0', RENKEI_WORKER_PORT: '0', ...env, LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const proc = new RenkeiProcess(child);
    const ready = await proc.logged(command === 'serve' ? 'gateway listening' : 'worker ready', 60_000);
    if (command === 'worker') proc.operationsUrl = `http://127.0.0.1:${(await proc.logged('worker operations listening')).port}`;
    if (command === 'serve') {
      const url = `http://127.0.0.1:${ready.port}`;
      proc.stack = { url, gateway: undefined as never, config: undefined as never, stop: async () => {} };
    }
    return proc;
  }

  /** Waits for a log line with this message; returns it parsed. */
  async logged(msg: string, ms = 30_000): Promise<Record<string, any>> {
    const deadline = Date.now() + ms;
    for (;;) {
      for (const line of this.lines) {
        if (!line.startsWith('{')) continue;
        const entry = JSON.parse(line) as Record<string, any>;
        if (entry.msg === msg) return entry;
      }
      if (this.child.exitCode !== null) throw new Error(`renkei exited (${this.child.exitCode}): ${this.lines.slice(-5).join('\n')}`);
      if (Date.now() > deadline) throw new Error(`no "${msg}" from renkei: ${this.lines.slice(-5).join('\n')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Kills the process without any chance to clean up. */
  async crash(): Promise<void> {
    this.child.kill('SIGKILL');
    await this.exited;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    this.child.kill('SIGTERM');
    await this.exited;
  }
}
