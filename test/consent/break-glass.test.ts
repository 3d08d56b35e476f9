import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient, organizationClient, type FhirClient } from '../support/fhir-client.js';
import { bodyTemperature, patient } from '../support/resources.js';
import { stackName, startTestStack, type TestStack } from '../support/stack.js';

const SPECIALTY = 'http://renkei.jp/fhir/CodeSystem/kyoryoku-requirement';

/** 特養 ↔ 協力医療機関 agreement with its three requirements, period and night/holiday numbers. */
function agreement(facility: string, hospital: string, period: { start?: string; end?: string }, active = true) {
  return {
    resourceType: 'OrganizationAffiliation',
    active,
    period,
    organization: { reference: `Organization/${facility}` },
    participatingOrganization: { reference: `Organization/${hospital}` },
    code: [{ coding: [{ system: 'http://renkei.jp/fhir/CodeSystem/affiliation-role', code: 'kyoryoku-iryokikan', display: '協力医療機関' }] }],
    specialty: [
      { coding: [{ system: SPECIALTY, code: 'consultation-24h', display: '常時相談対応' }] },
      { coding: [{ system: SPECIALTY, code: 'visit-24h', display: '常時診療対応' }] },
      { coding: [{ system: SPECIALTY, code: 'admission', display: '入院受入れ' }] },
    ],
    telecom: [{ system: 'phone', value: '03-0000-9999', use: 'work', rank: 1 }],
  };
}

describe(`break-glass between cooperating institutions (${stackName})`, () => {
  let stack: TestStack;
  let facility: FhirClient;
  let hospital: FhirClient;
  let unrelated: FhirClient;
  let residentId: string;
  let obsId: string;
  const emergency = { 'x-purpose-of-use': 'ETREAT', 'x-break-glass-reason': encodeURIComponent('夜間の急変対応 / night-time deterioration') };

  beforeAll(async () => {
    stack = await startTestStack();
    facility = await organizationClient(stack, 'bg-tokuyo');
    hospital = await organizationClient(stack, 'bg-hospital');
    unrelated = await organizationClient(stack, 'bg-other');
    residentId = (await facility.post('Patient', patient('BG-1'))).body.id;
    obsId = (await facility.post('Observation', bodyTemperature(residentId, 38.9, '2026-11-22T02:00:00+09:00'))).body.id;
    const admin = adminClient(stack);
    const refused = await admin.post('OrganizationAffiliation', agreement('bg-tokuyo', 'bg-hospital', { start: '2026-04-01' }));
    expect(refused.status).toBe(422); // admission needs a hospital, and bg-hospital is not marked as one yet
    expect(refused.body.issue[0].expression).toEqual(['OrganizationAffiliation.specialty[2]']);
    await admin.put('Organization/bg-hospital', {
      resourceType: 'Organization', id: 'bg-hospital', name: '協力病院',
      type: [{ coding: [{ system: 'http://renkei.jp/fhir/CodeSystem/organization-kind', code: 'hospital' }] }],
    });
    const made = await admin.post('OrganizationAffiliation', agreement('bg-tokuyo', 'bg-hospital', { start: '2026-04-01' }));
    expect(made.status).toBe(201);
    const unknown = await admin.post('OrganizationAffiliation', agreement('bg-tokuyo', 'no-such-hospital', { start: '2026-04-01' }));
    expect(unknown.status).toBe(422);
    const { specialty: _s, telecom: _t, period: _p, ...bare } = agreement('bg-tokuyo', 'bg-hospital', {});
    const incomplete = await admin.post('OrganizationAffiliation', bare);
    expect(incomplete.status).toBe(422);
    expect(incomplete.body.issue.map((i: any) => i.expression[0]).sort())
      .toEqual(['OrganizationAffiliation.period.start', 'OrganizationAffiliation.specialty', 'OrganizationAffiliation.telecom']);
  });
  afterAll(() => stack?.stop());

  it("opens a resident's data to the 協力医療機関 in an emergency, with a reason", async () => {
    expect((await hospital.get(`Observation/${obsId}`)).status).toBe(404);
    const res = await hospital.get(`Observation/${obsId}`, emergency);
    expect(res.status).toBe(200);
    expect(res.body.valueQuantity.value).toBe(38.9);
    expect((await hospital.get(`Observation?patient=${residentId}`, emergency)).body.total).toBe(1);
  });

  it('needs a reason, and an agreement', async () => {
    const noReason = await hospital.get(`Observation/${obsId}`, { 'x-purpose-of-use': 'ETREAT' });
    expect(noReason.status).toBe(400);
    expect(noReason.body.resourceType).toBe('OperationOutcome');
    expect((await unrelated.get(`Observation/${obsId}`, emergency)).status).toBe(404);
  });

  it('tells the data owner, and keeps the reason in the audit trail', async () => {
    await hospital.get(`Observation/${obsId}`, emergency);
    const notices = await facility.get('Communication?category=http://renkei.jp/fhir/CodeSystem/communication-category|break-glass');
    expect(notices.body.total).toBeGreaterThanOrEqual(1);
    const notice = notices.body.entry[0].resource;
    expect(notice).toMatchObject({ priority: 'urgent', recipient: [{ reference: 'Organization/bg-tokuyo' }], sender: { reference: 'Organization/bg-hospital' } });
    expect(notice.payload[0].contentString).toContain('夜間の急変対応');
    expect((await hospital.get(`Communication/${notice.id}`)).status).toBe(404);
    const audit = await hospital.get(`AuditEvent?entity=Observation/${obsId}&purpose=ETREAT`);
    expect(audit.body.entry[0].resource.purposeOfEvent[0].text).toContain('夜間の急変対応');
    // the owner sees the emergency disclosure, and the agreement that permitted it
    const agreementId = (await facility.get('OrganizationAffiliation?primary-organization=Organization/bg-tokuyo')).body.entry[0].resource.id;
    const trail = await facility.get(`AuditEvent?patient=${residentId}&purpose=ETREAT&_count=100`);
    const bases = trail.body.entry.flatMap((e: any) => e.resource.entity.filter((x: any) => x.role.code === '13').map((x: any) => x.what.reference));
    expect(bases).toContain(`OrganizationAffiliation/${agreementId}`);
  });

  it("opens only the facility's own residents' data, never its data about another institution's patient", async () => {
    const outsider = (await unrelated.post('Patient', patient('BG-O-1'))).body.id;
    const note = (await facility.post('Observation', bodyTemperature(outsider, 36.4, '2026-11-22T09:00:00+09:00'))).body.id;
    expect((await hospital.get(`Observation/${note}`, emergency)).status).toBe(404);
    expect((await hospital.get(`Observation/${obsId}`, emergency)).status).toBe(200);
  });

  it('closes again when the agreement ends or is inactive', async () => {
    const admin = adminClient(stack);
    const list = await admin.get('OrganizationAffiliation?primary-organization=Organization/bg-tokuyo');
    const current = list.body.entry[0].resource;
    await admin.put(`OrganizationAffiliation/${current.id}`, { ...current, period: { start: '2020-04-01', end: '2021-03-31' } });
    expect((await hospital.get(`Observation/${obsId}`, emergency)).status).toBe(404);
    await admin.put(`OrganizationAffiliation/${current.id}`, { ...current, active: false, period: { start: '2026-04-01' } });
    expect((await hospital.get(`Observation/${obsId}`, emergency)).status).toBe(404);
    await admin.put(`OrganizationAffiliation/${current.id}`, { ...current, active: true, period: { start: '2026-04-01' } });
    expect((await hospital.get(`Observation/${obsId}`, emergency)).status).toBe(200);
  });

  it("never opens the 協力医療機関's own patients to the facility", async () => {
    const own = (await hospital.post('Patient', patient('BG-H-1'))).body.id;
    expect((await facility.get(`Patient/${own}`, emergency)).status).toBe(404);
  });
});
