import { createHash } from 'node:crypto';
import type pg from 'pg';

const names = new Map<string, string>();

/**
 * A statement of the exchange's transactions (matching, settling, parking), prepared once per
 * connection on a PostgreSQL server so that each run is only bound, not planned again. Not on the
 * embedded store: its connections share one backend session, where a second PREPARE of a name fails.
 * Only for statements whose text is fixed (the set of names stays small).
 */
export function prepared(embedded: boolean, text: string, values: unknown[]): pg.QueryConfig {
  if (embedded) return { text, values };
  let name = names.get(text);
  if (!name) {
    name = `x_${createHash('sha1').update(text).digest('hex').slice(0, 24)}`;
    names.set(text, name);
  }
  return { name, text, values };
}
