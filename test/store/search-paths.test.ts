import { readdirSync, readFileSync } from 'node:fs';
import fhirpath from 'fhirpath';
import r4model from 'fhirpath/fhir-context/r4/index.js';
import { describe, expect, it } from 'vitest';
import { fromRoot } from '../../src/paths.js';
import { compilePath, paramsFor } from '../../src/store/search/parameters.js';

const dir = fromRoot('test/validation/fixtures/valid');
const resources = readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => JSON.parse(readFileSync(`${dir}/${f}`, 'utf8')));
resources.push({
  resourceType: 'Observation', status: 'final', code: { text: 'x' },
  component: [{ code: { text: 'a' }, valueQuantity: { value: 1, unit: 'mm' } }, { code: { text: 'b' }, valueCodeableConcept: { text: 'c' } }],
  valueString: 'free text',
}, { resourceType: 'Patient', deceasedDateTime: '2026-01-02', telecom: [{ system: 'email', value: 'a@example.jp' }, { system: 'phone', value: '03' }] });

describe('search parameter paths', () => {
  it('the direct walkers find exactly what FHIRPath finds on every fixture', () => {
    let compared = 0;
    for (const resource of resources) {
      for (const param of paramsFor(resource.resourceType).values()) {
        for (const part of param.expression.split(' | ').map((p) => p.replace(/\.where\(resolve\(\) is \w+\)/, ''))) {
          // `as` on a collection is an error in strict FHIRPath; ofType() is what the parameters mean.
          const reference = part.replace(/^\(?([\w.]+) as (\w+)\)?/, '$1.ofType($2)');
          const expected = fhirpath.evaluate(resource, reference, undefined, r4model as never);
          expect(compilePath(part)(resource), `${resource.resourceType} ${part}`).toEqual(expected);
          compared++;
        }
      }
    }
    expect(compared).toBeGreaterThan(300);
  });
});
