import { createHash } from 'node:crypto';
import type pg from 'pg';

const names = new Map<string, string>();

/**
 * A statement prepared once per connection on a PostgreSQL server, so that each run is only bound, not
 * planned again. Not on the embedded store (`prepare` false): its connections share one backend session,
 * where a second PREPARE of the same name fails. PostgreSQL truncates names at 63 bytes, so a statement
 * is named by the digest of its text; the set of texts is expected to stay small (the names are cached).
 */
export function preparedStatement(prepare: boolean, text: string, values: unknown[]): pg.QueryConfig {
  if (!prepare) return { text, values };
  let name = names.get(text);
  if (!name) {
    name = `s_${createHash('sha1').update(text).digest('hex').slice(0, 24)}`;
    if (names.size > 1000) names.clear();
    names.set(text, name);
  }
  return { name, text, values };
}
