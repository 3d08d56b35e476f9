import { describe, expect, it } from 'vitest';
import { Batcher } from '../../src/store/batcher.js';

/** A run that records what it was given, fails if it holds a 'bad' item, and finishes when released. */
function recorder() {
  const runs: string[][] = [];
  const releases: (() => void)[] = [];
  const run = async (items: string[]) => {
    runs.push(items);
    await new Promise<void>((resolve) => releases.push(resolve));
    if (items.includes('bad')) throw new Error('bad item');
    return items.map((i) => i.toUpperCase());
  };
  const releaseAll = async () => {
    while (releases.length) releases.shift()!();
    await new Promise((r) => setImmediate(r));
  };
  return { runs, run, releaseAll };
}

describe('Batcher (work of concurrent callers run together)', () => {
  it('runs a lone item at once and what arrives meanwhile together, each caller getting its own result', async () => {
    const r = recorder();
    const batcher = new Batcher(r.run, { maxInFlight: 1 });
    const first = batcher.submit('a');
    const rest = ['b', 'c', 'd'].map((i) => batcher.submit(i));
    expect(r.runs).toEqual([['a']]);
    await r.releaseAll();
    expect(r.runs).toEqual([['a'], ['b', 'c', 'd']]);
    await r.releaseAll();
    expect(await Promise.all([first, ...rest])).toEqual(['A', 'B', 'C', 'D']);
  });

  it('runs the items of a failed run one by one: only the bad one fails', async () => {
    const r = recorder();
    const batcher = new Batcher(r.run, { maxInFlight: 1 });
    const first = batcher.submit('a');
    const grouped = ['b', 'bad', 'c'].map((i) => batcher.submit(i).then((v) => ({ v }), (err: Error) => ({ err: err.message })));
    for (let i = 0; i < 3; i++) await r.releaseAll();
    expect(r.runs).toEqual([['a'], ['b', 'bad', 'c'], ['b'], ['bad'], ['c']]);
    expect(await first).toBe('A');
    expect(await Promise.all(grouped)).toEqual([{ v: 'B' }, { err: 'bad item' }, { v: 'C' }]);
  });

  it('takes items up to maxSize by their size, and puts an item handed back ahead of the others', async () => {
    const r = recorder();
    const batcher = new Batcher(r.run, { maxInFlight: 1, maxSize: 4, sizeOf: (i) => i.length });
    const all = [batcher.submit('x'), batcher.submit('yy'), batcher.submit('zz'), batcher.submit('w'), batcher.submit('back', { first: true })];
    for (let i = 0; i < 4; i++) await r.releaseAll();
    expect(r.runs).toEqual([['x'], ['back'], ['yy', 'zz'], ['w']]);
    expect(await Promise.all(all)).toEqual(['X', 'YY', 'ZZ', 'W', 'BACK']);
  });
});
