import { readdirSync, readFileSync } from 'node:fs';
import { fromRoot } from '../paths.js';
import { log } from '../logger.js';
import type { Database } from './db.js';

const MIGRATIONS_DIR = fromRoot('src', 'store', 'migrations');
// Any constant: serialises migrators when several gateway processes start at once.
const MIGRATION_LOCK = 7_160_201;

export interface Migration {
  version: string;
  sql: string;
}

export function listMigrations(): Migration[] {
  return readdirSync(MIGRATIONS_DIR)
    .filter((name) => /^\d{3}_.+\.sql$/.test(name))
    .sort()
    .map((name) => ({ version: name.replace(/\.sql$/, ''), sql: readFileSync(`${MIGRATIONS_DIR}/${name}`, 'utf8') }));
}

/** Applies every migration not yet recorded, each in its own transaction. Returns the versions applied. */
export async function migrate(db: Database): Promise<string[]> {
  const applied: string[] = [];
  await db.transaction(async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query(
      'CREATE TABLE IF NOT EXISTS schema_migration (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
    );
    const { rows } = await client.query<{ version: string }>('SELECT version FROM schema_migration');
    const done = new Set(rows.map((r) => r.version));
    for (const migration of listMigrations()) {
      if (done.has(migration.version)) continue;
      await client.query(migration.sql);
      await client.query('INSERT INTO schema_migration (version) VALUES ($1)', [migration.version]);
      applied.push(migration.version);
    }
  });
  if (applied.length) log.info({ applied }, 'store migrated');
  return applied;
}
