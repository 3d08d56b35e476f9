import { mkdirSync } from 'node:fs';
import pg from 'pg';
import { log } from '../logger.js';
import { EmbeddedServer } from './embedded-server.js';
import { preparedStatement } from './prepared.js';

/** Anything that runs SQL: the pool, or one connection inside a transaction. */
export interface Queryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(config: pg.QueryConfig): Promise<pg.QueryResult<R>>;
}

/**
 * The store's connection to PostgreSQL. In the embedded deployment the server is PGlite inside this
 * process, served over a loopback socket, so every other module talks plain SQL through `pg` either way.
 */
export interface Database extends Queryable {
  readonly url: string;
  readonly embedded: boolean;
  readonly pool: pg.Pool;
  /** Runs fn inside BEGIN … COMMIT on one connection; any throw rolls back (see `atOnce` for the exception). */
  transaction<T>(fn: (client: Queryable) => Promise<T>, options?: TransactionOptions): Promise<T>;
  close(): Promise<void>;
}

export interface TransactionOptions {
  /**
   * COMMIT returns before the commit is flushed to disk (synchronous_commit off): for work that is
   * redone when a server crash loses it (the last few hundred ms at most), so that locks taken in the
   * transaction are held for less time. Any later durable commit flushes it too.
   */
  redoable?: boolean;
  /**
   * BEGIN, the statements fn sends before its first await, and COMMIT go in one round trip: the locks
   * they take are held only while the server runs them, not while their answers travel back and the
   * process comes round to committing. For transactions whose statements do not need each other's
   * answers. fn can send nothing after that; a failed statement turns the COMMIT into a rollback and its
   * error is thrown. What fn does with the answers cannot roll the transaction back.
   */
  atOnce?: boolean;
}

export interface DatabaseOptions {
  databaseUrl?: string;
  dataDir: string;
  poolSize: number;
}

// timestamptz as ISO strings is left to callers; bigint counts come back as numbers.
pg.types.setTypeParser(20, (v) => Number(v));

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  if (options.databaseUrl) return wrapPool(options.databaseUrl, false, options.poolSize, async () => {});
  return openEmbedded(options);
}

async function openEmbedded(options: DatabaseOptions): Promise<Database> {
  const { PGlite } = await import('@electric-sql/pglite');
  mkdirSync(options.dataDir, { recursive: true });
  const pglite = await PGlite.create(options.dataDir);
  const server = new EmbeddedServer(pglite);
  const port = await server.listen();
  const url = `postgres://postgres:postgres@127.0.0.1:${port}/postgres`;
  log.info({ dataDir: options.dataDir, port }, 'embedded store started');
  return wrapPool(url, true, options.poolSize, async () => {
    await server.close();
    await pglite.close();
  });
}

/**
 * A query function that prepares parameterised statements (see preparedStatement); statements without
 * parameters, and query configs, go as given.
 */
function preparing(target: pg.Pool | pg.PoolClient): Queryable['query'] {
  return ((textOrConfig: string | pg.QueryConfig, values?: unknown[]) =>
    typeof textOrConfig !== 'string' || !values?.length
      ? target.query(textOrConfig as string, values)
      : target.query(preparedStatement(textOrConfig, values))) as Queryable['query'];
}

function wrapPool(url: string, embedded: boolean, poolSize: number, onClose: () => Promise<void>): Database {
  // Pipelined connections send a query without waiting for the answer to the one before: statements
  // that do not need each other's results (BEGIN and the first statement, a lock and the read behind
  // it) cost one round trip together. The server still runs them one after the other, in order.
  const pool = new pg.Pool({ connectionString: url, max: poolSize, idleTimeoutMillis: 30_000, pipeline: true });
  pool.on('error', (err) => log.warn({ err: err.message }, 'idle database connection failed'));
  let closed = false;
  async function sentAtOnce<T>(client: pg.PoolClient, fn: (client: Queryable) => Promise<T>, begun: Promise<unknown>): Promise<T> {
    let open = true;
    const query = preparing(client);
    const work = fn({
      query: ((...args: Parameters<typeof query>) => {
        if (!open) return Promise.reject(new Error('a transaction sent at once takes no statement after its first await'));
        return query(...args);
      }) as Queryable['query'],
    });
    open = false;
    const committed = client.query('COMMIT');
    const [done, commit] = await Promise.allSettled([work, committed, begun]);
    if (done.status === 'rejected') throw done.reason;
    if (commit.status === 'rejected') throw commit.reason;
    if ((commit.value as pg.QueryResult).command !== 'COMMIT') throw new Error('the transaction was rolled back');
    return done.value;
  }

  return {
    url,
    embedded,
    pool,
    query: preparing(pool),
    async transaction(fn, options) {
      const client = await pool.connect();
      try {
        // BEGIN travels with the transaction's first statement. It cannot fail on a connection that
        // then runs that statement, and it is awaited before COMMIT all the same.
        const begun = client.query(options?.redoable ? 'BEGIN; SET LOCAL synchronous_commit = off' : 'BEGIN');
        begun.catch(() => {});
        if (options?.atOnce) return await sentAtOnce(client, fn, begun);
        const result = await fn({ query: preparing(client) });
        await begun;
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw err;
      } finally {
        client.release();
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await pool.end();
      await onClose();
    },
  };
}
