import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { organizationClient, type FhirClient } from '../support/fhir-client.js';
import { bodyTemperature, consent, medicationRequest, patient } from '../support/resources.js';
import { stackName, startTestStack, type TestStack } from '../support/stack.js';

const IRCP = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP' }] };
const to = (org: string) => [{ role: IRCP, reference: { reference: `Organization/${org}` } }];
const LOINC = 'http://loinc.org';
const RESTRICTED = { system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R' };
/** An instant `minutes` from now, at second precision with the JST offset. */
const at = (minutes: number) => {
  const jst = new Date(Date.now() + minutes * 60_000 + 9 * 3_600_000).toISOString().slice(0, 19);
  return `${jst}+09:00`;
};

describe(`Consent provision elements (${stackName})`, () => {
  let stack: TestStack;
  let clinic: FhirClient;
  let facility: FhirClient;
  let rouken: FhirClient;
  let patientId: string;
  const ids: Record<string, string> = {};
  let consentId: string | undefined;

  beforeAll(async () => {
    stack = await startTestStack();
    clinic = await organizationClient(stack, 'pv-clinic');
    facility = await organizationClient(stack, 'pv-tokuyo');
    rouken = await organizationClient(stack, 'pv-rouken');
    patientId = (await clinic.post('Patient', patient('PV-1'))).body.id;
    const make = async (name: string, body: object) => { ids[name] = (await clinic.post((body as { resourceType: string }).resourceType, body)).body.id; };
    await make('medication', medicationRequest(patientId, 'PV-RX-1')); // HOT9, authored 2026-11-05
    await make('temperature', bodyTemperature(patientId, 36.8, '2026-11-20T08:00:00+09:00')); // LOINC 8310-5
    await make('weight', {
      ...bodyTemperature(patientId, 0, '2025-03-10T08:00:00+09:00'),
      code: { coding: [{ system: LOINC, code: '29463-7' }] }, valueQuantity: { value: 52.1, unit: 'kg', system: 'http://unitsofmeasure.org', code: 'kg' },
    });
    await make('condition', {
      resourceType: 'Condition', meta: { security: [RESTRICTED] }, subject: { reference: `Patient/${patientId}` },
      code: { coding: [{ system: LOINC, code: '8310-5' }], text: '精神疾患' }, recordedDate: '2026-01-10',
    });
  });
  afterAll(() => stack?.stop());

  /** Replaces the clinic's one Consent with the given root provision. */
  async function record(provision: object) {
    const body = { ...consent(patientId, 'pv-clinic', {}), provision, ...(consentId ? { id: consentId } : {}) };
    const res = consentId ? await clinic.put(`Consent/${consentId}`, body) : await clinic.post('Consent', body);
    expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
    consentId = res.body.id;
  }
  const visible = async (client = facility) => {
    const seen: string[] = [];
    for (const [name, id] of Object.entries(ids)) {
      const type = name === 'medication' ? 'MedicationRequest' : name === 'condition' ? 'Condition' : 'Observation';
      if ((await client.get(`${type}/${id}`)).status === 200) seen.push(name);
    }
    return seen.sort();
  };

  it('code: opens only data carrying one of the codes', async () => {
    await record({ type: 'permit', actor: to('pv-tokuyo'), code: [{ coding: [{ system: LOINC, code: '8310-5' }] }] });
    expect(await visible()).toEqual(['condition', 'temperature']);
    expect((await facility.get(`Observation?patient=${patientId}`)).body.total).toBe(1);
    expect((await facility.get(`Patient/${patientId}`)).status).toBe(404);
  });

  it('dataPeriod: opens only data whose clinical date lies within it', async () => {
    await record({ type: 'permit', actor: to('pv-tokuyo'), dataPeriod: { start: '2026-01-01', end: '2026-12-31' } });
    expect(await visible()).toEqual(['condition', 'medication', 'temperature']);
    expect((await facility.get(`Observation?patient=${patientId}&_total=accurate`)).body.total).toBe(1);
    await record({ type: 'permit', actor: to('pv-tokuyo'), provision: [{ type: 'deny', dataPeriod: { end: '2026-06-30' } }] });
    expect(await visible()).toEqual(['medication', 'temperature']);
  });

  it('securityLabel: a nested deny keeps restricted data closed', async () => {
    await record({ type: 'permit', actor: to('pv-tokuyo'), provision: [{ type: 'deny', securityLabel: [RESTRICTED] }] });
    expect(await visible()).toEqual(['medication', 'temperature', 'weight']);
    expect((await facility.get(`Condition?patient=${patientId}`)).body.total).toBe(0);
    await record({ type: 'deny', provision: [{ type: 'permit', actor: to('pv-tokuyo'), securityLabel: [RESTRICTED] }] });
    expect(await visible()).toEqual(['condition']);
  });

  it('actor: opens to the named recipients only', async () => {
    await record({ type: 'permit', actor: to('pv-rouken'), class: [{ system: 'http://hl7.org/fhir/resource-types', code: 'Observation' }] });
    expect(await visible()).toEqual([]);
    expect(await visible(rouken)).toEqual(['temperature', 'weight']);
  });

  it('period: shares from its start to its end, to the second', async () => {
    await record({ type: 'permit', actor: to('pv-tokuyo'), period: { start: at(-10), end: at(-1) } });
    expect(await visible()).toEqual([]);
    await record({ type: 'permit', actor: to('pv-tokuyo'), period: { start: at(10) } });
    expect(await visible()).toEqual([]);
    await record({ type: 'permit', actor: to('pv-tokuyo'), period: { start: at(-1), end: at(10) } });
    expect(await visible()).toEqual(['condition', 'medication', 'temperature', 'weight']);
    await record({ type: 'permit', actor: to('pv-tokuyo'), period: { end: at(10) }, provision: [{ type: 'deny', period: { start: at(-1) } }] });
    expect(await visible()).toEqual([]);
  });

  it('refuses provisions it could not enforce as written, naming the element', async () => {
    const refused = async (provision: object) => {
      const res = await clinic.post('Consent', { ...consent(patientId, 'pv-clinic', {}), provision });
      expect(res.status).toBe(422);
      return res.body.issue.map((i: any) => i.expression?.[0]);
    };
    const custodian = { role: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'CST' }] }, reference: { reference: 'Organization/pv-tokuyo' } };
    expect(await refused({ type: 'permit', actor: [custodian] })).toEqual(['Consent.provision.actor[0].role']);
    expect(await refused({ type: 'permit', provision: [{ type: 'deny', data: [{ meaning: 'instance', reference: { reference: `Observation/${ids.weight}` } }] }] }))
      .toEqual(['Consent.provision.provision[0].data']);
    expect(await refused({ type: 'permit', class: [{ system: 'http://example.org/classes', code: 'lab' }] })).toEqual(['Consent.provision.class[0]']);
    expect(await refused({ type: 'permit', actor: [{ role: IRCP, reference: { reference: 'Practitioner/x' } }] })).toEqual(['Consent.provision.actor[0].reference']);
  });

  it('accepts a Consent from an organization that holds data about the patient, and it opens only that data', async () => {
    const resident = (await facility.post('Patient', patient('PV-F-1'))).body.id;
    const facilityObs = (await facility.post('Observation', bodyTemperature(resident, 37.0, '2026-11-21T08:00:00+09:00'))).body.id;
    const before = await clinic.post('Consent', consent(resident, 'pv-clinic', { actors: ['pv-rouken'] }));
    expect(before.status).toBe(422); // the clinic holds nothing about the resident yet
    const visit = (await clinic.post('Observation', bodyTemperature(resident, 37.4, '2026-11-22T10:00:00+09:00'))).body.id;
    const made = await clinic.post('Consent', consent(resident, 'pv-clinic', { actors: ['pv-rouken'] }));
    expect(made.status).toBe(201);
    expect((await rouken.get(`Observation/${visit}`)).status).toBe(200);
    expect((await rouken.get(`Observation/${facilityObs}`)).status).toBe(404);
    expect((await rouken.get(`Patient/${resident}`)).status).toBe(404);
    expect((await rouken.get(`Observation?patient=${resident}`)).body.total).toBe(1);
  });
});
