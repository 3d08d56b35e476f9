import { describe, expect, it } from 'vitest';
import { newId } from '../../src/store/ids.js';

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('ids the gateway assigns', () => {
  it('are version 7 UUIDs carrying their time of creation', () => {
    const before = Date.now();
    const id = newId();
    const after = Date.now();
    expect(id).toMatch(V7);
    const ms = parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
    expect(ms).toBeGreaterThanOrEqual(before);
    expect(ms).toBeLessThanOrEqual(after);
  });

  it('sort in the order they were made across milliseconds, and do not repeat', async () => {
    const first = newId();
    await new Promise((r) => setTimeout(r, 2));
    const second = newId();
    expect(first < second).toBe(true);
    const many = Array.from({ length: 20_000 }, newId);
    expect(new Set(many).size).toBe(many.length);
    for (const id of many) expect(id).toMatch(V7);
  });
});
