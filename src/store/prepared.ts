import { createHash } from 'node:crypto';
import type pg from 'pg';

const names = new Map<string, string>();
const MAX_NAMED_STATEMENTS = 2000;

/**
 * A parameterised statement is prepared once per connection (per session) and then only
 * bound: planning often costs more than running the gateway's short index lookups. Statements are
 * named by the digest of their text (names are cut at 63 bytes); past MAX_NAMED_STATEMENTS distinct
 * texts, new ones stay unnamed so no connection accumulates prepared statements without bound.
 * Every parameterised query of the store's Queryable (pool and transactions alike, see db.ts) goes
 * through here. On the embedded store every connection shares one backend session: a name one
 * connection prepared is already there for the next, which the embedded server answers itself (see
 * session-statements.ts).
 */
export function preparedStatement(text: string, values: unknown[]): pg.QueryConfig {
  let name = names.get(text);
  if (name === undefined) {
    if (names.size >= MAX_NAMED_STATEMENTS) return { text, values };
    name = `q_${createHash('sha1').update(text).digest('hex').slice(0, 24)}`;
    names.set(text, name);
  }
  return { name, text, values };
}
