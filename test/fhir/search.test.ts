import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { organizationClient, type FhirClient } from '../support/fhir-client.js';
import { bodyTemperature, medicationRequest, patient, PATIENT_ID_SYSTEM } from '../support/resources.js';
import { stackName, startTestStack, type TestStack } from '../support/stack.js';

const ids = (bundle: any): string[] => (bundle.entry ?? []).filter((e: any) => e.search?.mode !== 'include').map((e: any) => e.resource.id);

describe(`FHIR search (${stackName})`, () => {
  let stack: TestStack;
  let clinic: FhirClient;
  let other: FhirClient;
  const p: Record<string, string> = {};

  beforeAll(async () => {
    stack = await startTestStack();
    clinic = await organizationClient(stack, 'clinic-s');
    other = await organizationClient(stack, 'clinic-t');
    const make = async (key: string, body: any) => (p[key] = (await clinic.post('Patient', body)).body.id);
    await make('yamada', patient('S-1'));
    await make('suzuki', patient('S-2', {
      name: [{ family: '鈴木', given: ['花子'] }, { family: 'スズキ', given: ['ハナコ'] }],
      gender: 'female', birthDate: '1940-03-15',
    }));
    await make('hankaku', patient('S-3', { name: [{ family: 'ｻﾄｳ', given: ['ｲﾁﾛｳ'] }], gender: undefined, birthDate: '1950', active: true }));
    for (const [i, value] of [36.4, 37.9, 38.5].entries()) {
      await clinic.post('Observation', bodyTemperature(p.yamada, value, `2026-11-2${i}T07:30:00+09:00`));
    }
    await clinic.post('MedicationRequest', medicationRequest(p.yamada, 'A-501'));
    await other.post('Patient', patient('S-1'));
  });
  afterAll(() => stack?.stop());

  it('token: identifier with system|value, value alone, and :not', async () => {
    const both = await clinic.get(`Patient?identifier=${encodeURIComponent(`${PATIENT_ID_SYSTEM}|S-1`)}`);
    expect(ids(both.body)).toEqual([p.yamada]);
    expect(both.body.total).toBe(1);
    expect(ids((await clinic.get('Patient?identifier=S-2')).body)).toEqual([p.suzuki]);
    const not = await clinic.get('Patient?gender:not=male');
    expect(ids(not.body).sort()).toEqual([p.suzuki, p.hankaku].sort());
  });

  it("string: Japanese prefix, kana, half-width kana, hiragana and :exact", async () => {
    expect(ids((await clinic.get(`Patient?name=${encodeURIComponent('山田')}`)).body)).toEqual([p.yamada]);
    expect(ids((await clinic.get(`Patient?name=${encodeURIComponent('山田太郎')}`)).body)).toEqual([p.yamada]);
    expect(ids((await clinic.get(`Patient?name=${encodeURIComponent('ヤマダ')}`)).body)).toEqual([p.yamada]);
    expect(ids((await clinic.get(`Patient?name=${encodeURIComponent('やまだ')}`)).body)).toEqual([p.yamada]);
    expect(ids((await clinic.get(`Patient?name=${encodeURIComponent('ｽｽﾞｷ')}`)).body)).toEqual([p.suzuki]);
    expect(ids((await clinic.get(`Patient?family=${encodeURIComponent('サトウ')}`)).body)).toEqual([p.hankaku]);
    expect(ids((await clinic.get(`Patient?family:exact=${encodeURIComponent('ｻﾄｳ')}`)).body)).toEqual([p.hankaku]);
    expect(ids((await clinic.get(`Patient?family:exact=${encodeURIComponent('サトウ')}`)).body)).toEqual([]);
    expect(ids((await clinic.get(`Patient?address:contains=${encodeURIComponent('浦和')}`)).body).sort()).toEqual(
      [p.yamada, p.suzuki, p.hankaku].sort(),
    );
  });

  it('date: precision and prefixes', async () => {
    expect(ids((await clinic.get('Patient?birthdate=1935')).body)).toEqual([p.yamada]);
    expect(ids((await clinic.get('Patient?birthdate=1940-03')).body)).toEqual([p.suzuki]);
    expect(ids((await clinic.get('Patient?birthdate=lt1940-01-01')).body)).toEqual([p.yamada]);
    expect(ids((await clinic.get('Patient?birthdate=ge1940-01-01')).body).sort()).toEqual([p.suzuki, p.hankaku].sort());
    const obs = await clinic.get('Observation?date=ge2026-11-21&date=lt2026-11-23');
    expect(obs.body.total).toBe(2);
  });

  it('quantity and number', async () => {
    expect((await clinic.get('Observation?value-quantity=gt37.5')).body.total).toBe(2);
    expect((await clinic.get(`Observation?value-quantity=${encodeURIComponent('38.5|http://unitsofmeasure.org|Cel')}`)).body.total).toBe(1);
    // The search value's precision is its range: 38 means [37.5, 38.5), 38.0 means [37.95, 38.05).
    expect((await clinic.get('Observation?value-quantity=38')).body.total).toBe(1);
    expect((await clinic.get('Observation?value-quantity=38.0')).body.total).toBe(0);
  });

  it('reference: plain id, Type/id and :missing', async () => {
    expect((await clinic.get(`Observation?subject=Patient/${p.yamada}`)).body.total).toBe(3);
    expect((await clinic.get(`Observation?patient=${p.yamada}`)).body.total).toBe(3);
    expect((await clinic.get(`Observation?patient=${p.suzuki}`)).body.total).toBe(0);
    expect((await clinic.get('Patient?organization:missing=true')).body.total).toBe(3);
  });

  it('uri: _profile', async () => {
    const withProfile = patient('S-9', { meta: { profile: ['http://example.jp/fhir/StructureDefinition/x'] } });
    const created = await clinic.post('Patient', withProfile);
    const found = await clinic.get(`Patient?_profile=${encodeURIComponent('http://example.jp/fhir/StructureDefinition/x')}`);
    expect(ids(found.body)).toEqual([created.body.id]);
    await clinic.delete(`Patient/${created.body.id}`);
  });

  it('chains: patient.identifier and subject:Patient.name', async () => {
    const chained = await clinic.get(`Observation?patient.identifier=${encodeURIComponent(`${PATIENT_ID_SYSTEM}|S-1`)}`);
    expect(chained.body.total).toBe(3);
    const typed = await clinic.get(`MedicationRequest?subject:Patient.name=${encodeURIComponent('ヤマダ')}`);
    expect(typed.body.total).toBe(1);
  });

  it('_include and _revinclude add the referenced resources once', async () => {
    const inc = await clinic.get(`Observation?patient=${p.yamada}&_include=Observation:patient`);
    const included = inc.body.entry.filter((e: any) => e.search.mode === 'include');
    expect(included.map((e: any) => e.resource.id)).toEqual([p.yamada]);
    const rev = await clinic.get(`Patient?_id=${p.yamada}&_revinclude=Observation:subject`);
    expect(rev.body.entry.filter((e: any) => e.search.mode === 'include')).toHaveLength(3);
  });

  it('_sort, _count and stable paging links', async () => {
    const sorted = await clinic.get('Observation?_sort=-value-quantity');
    expect(sorted.body.entry.map((e: any) => e.resource.valueQuantity.value)).toEqual([38.5, 37.9, 36.4]);
    const byDate = await clinic.get('Observation?_sort=date&_count=2');
    expect(byDate.body.entry.map((e: any) => e.resource.valueQuantity.value)).toEqual([36.4, 37.9]);
    const next = byDate.body.link.find((l: any) => l.relation === 'next').url;
    const page2 = await clinic.get(next.replace(stack.url, ''));
    expect(page2.body.entry.map((e: any) => e.resource.valueQuantity.value)).toEqual([38.5]);
    expect(page2.body.link.find((l: any) => l.relation === 'next')).toBeUndefined();
    expect(page2.body.link.find((l: any) => l.relation === 'previous')).toBeDefined();
  });

  it('_summary=count, _elements and _lastUpdated', async () => {
    const count = await clinic.get('Patient?_summary=count');
    expect(count.body.total).toBe(3);
    expect(count.body.entry).toBeUndefined();
    const elements = await clinic.get(`Patient?_id=${p.yamada}&_elements=birthDate`);
    const resource = elements.body.entry[0].resource;
    expect(resource.birthDate).toBe('1935-07-10');
    expect(resource.name).toBeUndefined();
    expect(resource.meta.tag).toContainEqual(expect.objectContaining({ code: 'SUBSETTED' }));
    expect((await clinic.get('Patient?_lastUpdated=gt2000-01-01')).body.total).toBe(3);
    expect((await clinic.get('Patient?_lastUpdated=lt2000-01-01')).body.total).toBe(0);
  });

  it("never shows another organization's data, in results or in total", async () => {
    const res = await other.get('Patient');
    expect(res.body.total).toBe(1);
    const hidden = await other.get(`Patient/${p.yamada}`);
    expect(hidden.status).toBe(404);
    expect((await other.get(`Observation?patient=${p.yamada}`)).body.total).toBe(0);
    expect((await other.get(`Patient/${p.yamada}/_history`)).body.total).toBe(0);
  });

  it('unknown parameters are 400 unless Prefer: handling=lenient', async () => {
    const strict = await clinic.get('Patient?shoe-size=27');
    expect(strict.status).toBe(400);
    expect(strict.body.resourceType).toBe('OperationOutcome');
    const lenient = await clinic.get('Patient?shoe-size=27', { prefer: 'handling=lenient' });
    expect(lenient.status).toBe(200);
    expect(lenient.body.total).toBe(3);
    expect(lenient.body.link[0].url).not.toContain('shoe-size');
  });

  it('POST _search with a form body searches like GET', async () => {
    const anonymous = await fetch(`${stack.url}/fhir/Patient/_search`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'gender=female',
    });
    expect(anonymous.status).toBe(401);
    const ok = await clinic.request('POST', 'Patient/_search', 'gender=female', { 'content-type': 'application/x-www-form-urlencoded' });
    expect(ids(ok.body)).toEqual([p.suzuki]);
  });
});
