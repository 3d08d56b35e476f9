import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromRoot } from '../../src/paths.js';
import { organizationClient, type FhirClient, type FhirResponse } from '../support/fhir-client.js';
import { stackName, startTestStack, type TestStack } from '../support/stack.js';

/** Values a search parameter of any type must survive: wrong type, broken prefix, odd escapes, huge. */
const HOSTILE_VALUES = ['', 'x', '-1', '1e400', 'gt', 'ge2026-13-01', 'ap1|', '|', 'a|b|c', '5||mg', 'Patient/', '%E3', '9'.repeat(400), 'NaN', ',,', '\\', '2026-02-30', '%00'];
const MODIFIERS = ['', ':missing', ':exact', ':not', ':below', ':Patient', ':nonsense'];

/** Resources the mappings produce (the golden outputs), as seeds for mutation. */
function goldenResources(): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const dir of ['hl7v2', 'csv']) {
    const folder = fromRoot('test', 'golden', dir);
    for (const file of readdirSync(folder).filter((f) => f.endsWith('.expected.json') || (dir === 'hl7v2' && f.endsWith('.json')))) {
      const golden = JSON.parse(readFileSync(path.join(folder, file), 'utf8')) as { resources?: { resource?: Record<string, unknown> }[] };
      for (const r of golden.resources ?? []) if (r.resource) out.push(r.resource);
    }
  }
  return out;
}

const junk = fc.constantFrom<unknown>(null, 0, -1, 1e308, '', 'x', [], {}, [null], { x: 1 }, true, '2026-13-45', 'Patient/', '#x', 'urn:uuid:x',
  'あ'.repeat(2000), { reference: 5 }, { coding: [null] }, { start: 'x', end: 5 });

/** One to three edits anywhere in the resource: a value replaced, removed, wrapped in a list, or a sibling added. */
function mutated(resource: Record<string, unknown>): fc.Arbitrary<Record<string, unknown>> {
  const edit = fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 0, max: 3 }), junk, fc.constantFrom('_x', 'extension', 'contained', 'meta', 'id', 'text'));
  return fc.array(edit, { minLength: 1, maxLength: 3 }).map((edits) => {
    const copy = structuredClone(resource);
    delete copy.id;
    for (const [where, kind, value, sibling] of edits) {
      const places = locations(copy);
      if (!places.length) break;
      const [parent, key] = places[Math.min(places.length - 1, Math.floor(where * places.length))];
      if (kind === 0) parent[key] = value;
      else if (kind === 1) delete parent[key];
      else if (kind === 2) parent[key] = [parent[key]];
      else if (!Array.isArray(parent)) parent[sibling] = value;
    }
    return copy;
  });
}

type Place = [Record<string | number, unknown>, string | number];
function locations(node: unknown, out: Place[] = [], root = true): Place[] {
  if (!node || typeof node !== 'object') return out;
  for (const key of Object.keys(node)) {
    if (root && key === 'resourceType') continue;
    const index = Array.isArray(node) ? Number(key) : key;
    out.push([node as Record<string | number, unknown>, index]);
    locations((node as Record<string, unknown>)[key], out, false);
  }
  return out;
}

describe(`fuzzing the FHIR API (${stackName})`, () => {
  let stack: TestStack;
  let clinic: FhirClient;

  beforeAll(async () => {
    stack = await startTestStack();
    clinic = await organizationClient(stack, 'clinic-fuzz');
  });
  afterAll(() => stack?.stop());

  const answered = (res: FhirResponse, what: string) => {
    expect(res.status, what).toBeLessThan(500);
    if (res.status >= 400) expect(res.body?.resourceType, what).toBe('OperationOutcome');
  };

  it('every search parameter of every type, with hostile values and modifiers: answered, never a 5xx', async () => {
    const capability = (await clinic.get('metadata')).body;
    let asked = 0;
    for (const rest of capability.rest[0].resource as { type: string; searchParam?: { name: string }[] }[]) {
      const names = (rest.searchParam ?? []).map((p) => p.name);
      for (const name of names) {
        for (const [i, value] of HOSTILE_VALUES.entries()) {
          const modifier = MODIFIERS[(i + name.length) % MODIFIERS.length];
          const query = `${name}${modifier}=${value.startsWith('%') ? value : encodeURIComponent(value)}`;
          answered(await clinic.get(`${rest.type}?${query}`), `${rest.type}?${query}`);
          asked++;
        }
      }
    }
    expect(asked).toBeGreaterThan(5000);
  }, 180_000);

  it('1,000 mutated resources as creates, updates and transaction entries: answered, never a 5xx', async () => {
    const seeds = goldenResources();
    expect(new Set(seeds.map((s) => s.resourceType)).size).toBeGreaterThanOrEqual(8);
    const samples = fc.sample(fc.constantFrom(...seeds).chain(mutated), { numRuns: 1000, seed: 7 });
    for (const [i, resource] of samples.entries()) {
      const type = String(resource.resourceType);
      const what = JSON.stringify(resource).slice(0, 300);
      answered(await clinic.post(type, resource), `create ${what}`);
      if (i % 4 === 0) answered(await clinic.put(`${type}/fuzz-${i}`, { ...resource, id: `fuzz-${i}` }), `update ${what}`);
      if (i % 4 === 1) {
        const bundle = { resourceType: 'Bundle', type: i % 8 === 1 ? 'transaction' : 'batch', entry: [{ resource, request: { method: 'POST', url: type } }] };
        answered(await clinic.post('', bundle), `bundle ${what}`);
      }
    }
  }, 120_000);
});
