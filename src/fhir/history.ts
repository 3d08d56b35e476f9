import type { HistoryQuery } from '../store/repository.js';
import { parseDateRange } from '../store/search/dates.js';
import { DEFAULT_COUNT, MAX_COUNT, type QueryParams } from '../store/search/request.js';
import { badRequest } from './outcome.js';

/** Reads _count, _offset, _since and _at of a history interaction. */
export function historyQuery(target: { resourceType?: string; id?: string }, params: QueryParams): HistoryQuery {
  const query: HistoryQuery = { ...target, count: DEFAULT_COUNT, offset: 0 };
  for (const [key, value] of params) {
    if (key === '_count' || key === '_offset') {
      if (!/^\d{1,9}$/.test(value)) throw badRequest(`${key} must be a non-negative integer`);
      if (key === '_count') query.count = Math.min(Number(value), MAX_COUNT);
      else query.offset = Number(value);
    } else if (key === '_since' || key === '_at') {
      const range = parseDateRange(value);
      if (!range) throw badRequest(`${key} must be an instant such as 2026-11-01T00:00:00+09:00`);
      if (key === '_since') query.since = range.lo;
      else query.at = range.hi;
    } else if (key !== '_format' && key !== '_pretty') {
      throw badRequest(`History does not support the parameter ${key}`);
    }
  }
  return query;
}
