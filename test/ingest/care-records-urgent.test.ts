import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CARE_PROVIDER_NO } from '../../src/ingest/sender.js';
import { adminClient, FhirClient } from '../support/fhir-client.js';
import { consent } from '../support/resources.js';
import { stackName, startTestStack, type TestStack } from '../support/stack.js';
import { post, putOrganization, registerClient, registerSender } from './support.js';

/**
 * 急変 in daily care records: the flag as facility systems write it, and who sees the urgent Communication.
 * It is the facility's data: the 協力医療機関 reads it under the resident's Consent (or by break-glass), and
 * the facility is told in the answer when no Consent lets the 協力医療機関 see it yet.
 */

const RESIDENT = 'http://renkei.jp/fhir/NamingSystem/resident-id/1370000005';
const HEAD = '記録日時,施設利用者ID,体温,急変,特記事項';
type Outcome = { issue: { severity: string; code: string; diagnostics: string; expression?: string[] }[] };
const outcomeOf = (text: string) => JSON.parse(text) as Outcome;

describe(`urgent care records over HTTP (${stackName})`, () => {
  let stack: TestStack;
  let facility: string;
  let sakura: FhirClient;
  let hospital: FhirClient;
  const residents = new Map<string, string>();
  const records = (body: string, contentType = 'text/csv') =>
    post(`${stack.url}/ingest/care-records`, facility, body, { 'content-type': contentType });
  const urgentFor = async (resident: string) =>
    (await sakura.get(`Communication?subject=Patient/${residents.get(resident)}&_count=100`)).body.entry?.map((e: any) => e.resource) ?? [];

  beforeAll(async () => {
    stack = await startTestStack();
    facility = await registerSender(stack, 'facility-sakura', CARE_PROVIDER_NO, '1370000005');
    await putOrganization(stack, 'hospital-midori', [{ system: 'http://jpfhir.jp/fhir/core/IdSystem/insurance-medical-institution-no', value: '1310000099' }]);
    sakura = new FhirClient(stack.url, facility);
    hospital = new FhirClient(stack.url, (await registerClient(stack, 'hospital-midori')).token);
    const agreement = await adminClient(stack).post('OrganizationAffiliation', {
      resourceType: 'OrganizationAffiliation', active: true, period: { start: '2026-04-01' },
      organization: { reference: 'Organization/facility-sakura' }, participatingOrganization: { reference: 'Organization/hospital-midori' },
      code: [{ coding: [{ system: 'http://renkei.jp/fhir/CodeSystem/affiliation-role', code: 'kyoryoku-iryokikan' }] }],
      specialty: [{ coding: [{ system: 'http://renkei.jp/fhir/CodeSystem/kyoryoku-requirement', code: 'consultation-24h' }] }],
      telecom: [{ system: 'phone', value: '048-000-9999', use: 'work' }],
    });
    expect(agreement.status, JSON.stringify(agreement.body)).toBe(201);
    for (const id of ['R-0042', 'R-0043', 'R-0044']) {
      const made = await sakura.post('Patient', {
        resourceType: 'Patient', identifier: [{ system: RESIDENT, value: id }], name: [{ text: '入所者' }], gender: 'female', birthDate: '1936-01-01',
      });
      expect(made.status).toBe(201);
      residents.set(id, made.body.id);
    }
    const opened = await sakura.post('Consent', consent(residents.get('R-0043')!, 'facility-sakura', { actors: ['hospital-midori'], classes: ['Communication', 'Observation'] }));
    expect(opened.status, JSON.stringify(opened.body)).toBe(201);
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('reads the 急変 flag as facility systems write it: yes and no forms, full- and half-width, empty = no', async () => {
    const yes = ['1', '１', 'true', 'TRUE', 'ｔｒｕｅ', '有', 'あり', 'アリ', 'ｱﾘ', '○', '◯', 'Y', 'y', 'Ｙ', '急変'];
    const no = ['0', '０', 'false', 'FALSE', 'Ｆａｌｓｅ', '無', 'なし', 'ナシ', 'ﾅｼ', '×', 'N', 'n', 'Ｎ', ''];
    const rows = [...yes, ...no].map((flag, i) => `2026-11-21T${String(i % 24).padStart(2, '0')}:${String(Math.floor(i / 24) * 10).padStart(2, '0')}:00+09:00,R-0044,36.5,${flag},`);
    const res = await records([HEAD, ...rows, ''].join('\n'));
    expect(res.status, res.text).toBe(200);
    expect(outcomeOf(res.text).issue[0].diagnostics).toMatch(/29 of 29 rows accepted/);
    const alerts = await urgentFor('R-0044');
    expect(alerts).toHaveLength(yes.length);
    expect(alerts.every((c: any) => c.priority === 'stat')).toBe(true);
    const json = await records(JSON.stringify([
      { 記録日時: '2026-11-22T07:00:00+09:00', 施設利用者ID: 'R-0044', 体温: 38.4, 急変: true },
      { 記録日時: '2026-11-22T08:00:00+09:00', 施設利用者ID: 'R-0044', 体温: 36.4, 急変: false },
    ]), 'application/json');
    expect(json.status, json.text).toBe(200);
    expect(await urgentFor('R-0044')).toHaveLength(yes.length + 1);
  });

  it('refuses any other 急変 value, naming line and column, and stores nothing of the file', async () => {
    const res = await records([HEAD, '2026-11-23T07:00:00+09:00,R-0044,36.5,1,', '2026-11-23T08:00:00+09:00,R-0044,36.5,2,', '2026-11-23T09:00:00+09:00,R-0044,36.5,はい,', ''].join('\n'));
    expect(res.status).toBe(422);
    const issues = outcomeOf(res.text).issue;
    expect(issues.map((i) => i.expression?.[0])).toEqual(['line 3, column 急変', 'line 4, column 急変']);
    expect(issues[0].diagnostics).toMatch(/^line 3, column 急変: .*"2" is not one of 0, 1, １, TRUE, .*急変, ０, FALSE, .*なし/);
    const stored = (await sakura.get(`Observation?subject=Patient/${residents.get('R-0044')}&_count=100`)).body.entry.map((e: any) => e.resource);
    expect(stored.length).toBeGreaterThan(0);
    expect(stored.filter((o: any) => o.effectiveDateTime.startsWith('2026-11-23'))).toEqual([]);
  });

  it('without a Consent opening Communication, the answer warns that the 協力医療機関 cannot see the row’s urgent Communication; break-glass can', async () => {
    const res = await records([HEAD, '2026-11-24T07:00:00+09:00,R-0042,36.5,0,', '2026-11-24T13:00:00+09:00,R-0042,39.2,1,発熱と呼吸苦', ''].join('\n'));
    expect(res.status, res.text).toBe(200);
    const [summary, ...warnings] = outcomeOf(res.text).issue;
    expect(summary.severity).toBe('information');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ severity: 'warning', code: 'suppressed', expression: ['line 3'] });
    expect(warnings[0].diagnostics).toMatch(/^line 3: the urgent Communication .* Organization\/hospital-midori cannot see it until the resident's Consent opens Communication/);
    expect(warnings[0].diagnostics).toMatch(/利用者の同意/);
    const [alert] = await urgentFor('R-0042');
    expect((await hospital.get(`Communication/${alert.id}`)).status).toBe(404);
    const emergency = { 'x-purpose-of-use': 'ETREAT', 'x-break-glass-reason': encodeURIComponent('夜間の急変対応') };
    expect((await hospital.get(`Communication/${alert.id}`, emergency)).status).toBe(200);
  });

  it('with a Consent opening Communication to the 協力医療機関, no warning and the 協力医療機関 reads it', async () => {
    const res = await records([HEAD, '2026-11-24T14:00:00+09:00,R-0043,39.0,あり,転倒後に意識低下', ''].join('\n'));
    expect(res.status, res.text).toBe(200);
    expect(outcomeOf(res.text).issue.map((i) => i.severity)).toEqual(['information']);
    const [alert] = await urgentFor('R-0043');
    const seen = await hospital.get(`Communication/${alert.id}`);
    expect(seen.status).toBe(200);
    expect(seen.body).toMatchObject({ priority: 'stat', payload: [{ contentString: '転倒後に意識低下' }] });
  });
});
