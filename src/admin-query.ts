import { badRequest } from './fhir/outcome.js';

/** Query values of the administration lists (/admin/messages, /admin/deliveries), checked alike. */

/** A value that must be one of a fixed set, or absent. */
export function oneOf<T extends string>(name: string, value: string | undefined, allowed: readonly T[]): T | undefined {
  if (value && !(allowed as readonly string[]).includes(value)) throw badRequest(`${name} must be one of ${allowed.join(', ')}`);
  return (value || undefined) as T | undefined;
}

/**
 * `_count` (0..maxCount, default 50) and `_offset`. The offset stays within 2^53: there it prints as plain
 * digits for PostgreSQL's bigint (1e21 would print as "1e+21" and fail in SQL).
 */
export function pageOf(count: string | undefined, offset: string | undefined, maxCount: number): { count: number; offset: number } {
  const page = { count: Number(count ?? 50), offset: Number(offset ?? 0) };
  if (!Number.isInteger(page.count) || page.count < 0 || page.count > maxCount) throw badRequest(`_count must be 0..${maxCount}`);
  if (!Number.isSafeInteger(page.offset) || page.offset < 0) throw badRequest(`_offset must be an integer 0..${Number.MAX_SAFE_INTEGER}`);
  return page;
}
