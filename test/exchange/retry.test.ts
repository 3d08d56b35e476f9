import { describe, expect, it } from 'vitest';
import { afterFailure, backoffDelay } from '../../src/exchange/retry.js';

const settings = { backoffMs: 1000, backoffMaxMs: 60_000, deliveryAttempts: 5, deliveryMaxAgeSeconds: 3600 };

describe('delivery retry policy', () => {
  it('backs off exponentially with jitter between half and all of each step, up to the cap', () => {
    const low = (attempt: number) => backoffDelay(attempt, settings, () => 0);
    const high = (attempt: number) => backoffDelay(attempt, settings, () => 1);
    expect([1, 2, 3, 4].map(low)).toEqual([500, 1000, 2000, 4000]);
    expect([1, 2, 3, 4].map(high)).toEqual([1000, 2000, 4000, 8000]);
    expect([low(20), high(20)]).toEqual([30_000, 60_000]);
    const drawn = new Set(Array.from({ length: 50 }, () => backoffDelay(3, settings)));
    expect(drawn.size).toBeGreaterThan(1);
    for (const d of drawn) expect(d >= 2000 && d <= 4000).toBe(true);
  });

  it('retries until the attempt limit, then gives up', () => {
    const created = new Date();
    expect(afterFailure(4, created, settings)).toMatchObject({ retry: true });
    expect(afterFailure(5, created, settings)).toEqual({ retry: false, reason: 'gave up after 5 attempts' });
    expect(afterFailure(2, created, settings, 2)).toMatchObject({ retry: false });
  });

  it('gives up once the next attempt would come later than the age limit', () => {
    const old = new Date(Date.now() - 3600_000 + 100);
    expect(afterFailure(1, old, settings)).toEqual({ retry: false, reason: 'gave up: older than 3600 s' });
    expect(afterFailure(1, new Date(Date.now() - 60_000), settings)).toMatchObject({ retry: true });
  });
});
