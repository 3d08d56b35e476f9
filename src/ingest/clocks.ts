import type { Queryable } from '../store/db.js';

/**
 * Each resource a message wrote (or found already as it says) remembers that message and its time, so
 * an older message arriving later leaves it alone instead of rolling it back.
 */
export interface Clocks {
  types: string[];
  ids: string[];
  times: Date[];
  messageIds: number[];
}

export const noClocks = (): Clocks => ({ types: [], ids: [], times: [], messageIds: [] });

/** The clocks of one message's resources (`Type/id` keys), added to `into`. */
export function addClocks(into: Clocks, keys: readonly string[], time: Date, messageId: number): void {
  for (const key of keys) {
    const slash = key.indexOf('/');
    into.types.push(key.slice(0, slash));
    into.ids.push(key.slice(slash + 1));
    into.times.push(time);
    into.messageIds.push(messageId);
  }
}

/** A CTE (`clocks`) advancing the clocks; its four arrays are the parameters from `$first` on. */
export function clocksCte(first: number): string {
  const [types, ids, times, messages] = [first, first + 1, first + 2, first + 3].map((n) => `$${n}`);
  return `clocks AS (INSERT INTO ingest_resource_clock (resource_type, resource_id, message_time, message_id)
     SELECT t, i, tm, mid FROM unnest(${types}::text[], ${ids}::text[], ${times}::timestamptz[], ${messages}::bigint[]) AS u(t, i, tm, mid)
     ON CONFLICT (resource_type, resource_id) DO UPDATE SET message_time = EXCLUDED.message_time, message_id = EXCLUDED.message_id
     WHERE ingest_resource_clock.message_time <= EXCLUDED.message_time)`;
}

export const clocksValues = (c: Clocks): unknown[] => [c.types, c.ids, c.times, c.messageIds];

export async function advanceClocks(tx: Queryable, clocks: Clocks): Promise<void> {
  if (clocks.types.length) await tx.query(`WITH ${clocksCte(1)} SELECT 1`, clocksValues(clocks));
}
