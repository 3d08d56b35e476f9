import { readFileSync } from 'node:fs';
import iconv from 'iconv-lite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CARE_PROVIDER_NO } from '../../src/ingest/sender.js';
import { fromRoot } from '../../src/paths.js';
import { adminClient, FhirClient } from '../support/fhir-client.js';
import { stackName, startTestStack, type TestStack } from '../support/stack.js';
import { post, putOrganization, registerSender } from './support.js';

const csvFile = (name: string) => readFileSync(fromRoot('test', 'golden', 'csv', name));
const FIXTURE = 'fixture-UP2KYO_202611_1370000001_1370000002_20261101090000.CSV';
const FIXTURE_NAME = FIXTURE.replace('fixture-', '');
const INSURED = encodeURIComponent('http://renkei.jp/fhir/NamingSystem/insured-no');
const RESIDENT = 'http://renkei.jp/fhir/NamingSystem/resident-id/1370000005';
const sjis = (rows: string[][]) => iconv.encode(rows.map((r) => r.join(',')).join('\r\n') + '\r\n', 'cp932');
const json = (text: string) => JSON.parse(text) as { issue: { severity: string; diagnostics: string; expression?: string[] }[] };

describe(`care-plan CSV and care records over HTTP (${stackName})`, () => {
  let stack: TestStack;
  let careManager: string;
  let facility: string;
  let loneFacility: string;
  const careplan = (body: Uint8Array, query = '', headers: Record<string, string> = {}, token = careManager) =>
    post(`${stack.url}/ingest/careplan-csv${query}`, token, body, { 'content-type': 'text/csv', ...headers });
  const records = (body: Uint8Array | string, query = '', contentType = 'text/csv', token = facility) =>
    post(`${stack.url}/ingest/care-records${query}`, token, body, { 'content-type': contentType });

  beforeAll(async () => {
    stack = await startTestStack();
    careManager = await registerSender(stack, 'cm-aoi', CARE_PROVIDER_NO, '1370000001');
    facility = await registerSender(stack, 'facility-sakura', CARE_PROVIDER_NO, '1370000005');
    loneFacility = await registerSender(stack, 'facility-alone', CARE_PROVIDER_NO, '1370000009');
    await putOrganization(stack, 'hospital-midori', [{ system: 'http://jpfhir.jp/fhir/core/IdSystem/insurance-medical-institution-no', value: '1310000099' }]);
    const agreement = await adminClient(stack).post('OrganizationAffiliation', {
      resourceType: 'OrganizationAffiliation', active: true, period: { start: '2026-04-01' },
      organization: { reference: 'Organization/facility-sakura' }, participatingOrganization: { reference: 'Organization/hospital-midori' },
      code: [{ coding: [{ system: 'http://renkei.jp/fhir/CodeSystem/affiliation-role', code: 'kyoryoku-iryokikan' }] }],
      specialty: ['consultation-24h', 'visit-24h'].map((code) => ({ coding: [{ system: 'http://renkei.jp/fhir/CodeSystem/kyoryoku-requirement', code }] })),
      telecom: [{ system: 'phone', value: '048-000-9999', use: 'work' }],
    });
    expect(agreement.status, JSON.stringify(agreement.body)).toBe(201);
    const sakura = new FhirClient(stack.url, facility);
    for (const [id, name] of [['R-0042', '田中 ハル'], ['R-0043', '小林 トメ']]) {
      const made = await sakura.post('Patient', {
        resourceType: 'Patient', identifier: [{ system: RESIDENT, value: id }], name: [{ text: name }], gender: 'female', birthDate: '1936-01-01',
      });
      expect(made.status).toBe(201);
    }
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('利用者補足情報, 第1表 and 第2表 build one CarePlan for the 被保険者, with Conditions, Goals and activities', async () => {
    expect((await careplan(csvFile('careplan-user.sjis.csv'), '?table=user')).status).toBe(200);
    expect((await careplan(csvFile('careplan-table1.sjis.csv'), '?table=1')).status).toBe(200);
    const res = await careplan(csvFile(FIXTURE), '', { 'x-filename': FIXTURE_NAME });
    expect(res.status).toBe(200);
    expect(json(res.text).issue[0].diagnostics).toMatch(/2 of 2 rows accepted/);
    const fhir = new FhirClient(stack.url, careManager);
    const [patient] = (await fhir.get(`Patient?identifier=${INSURED}|131016:0000123456`)).body.entry.map((e: any) => e.resource);
    expect(patient.name[0]).toMatchObject({ family: '山田', given: ['花'] });
    const plans = (await fhir.get(`CarePlan?subject=Patient/${patient.id}`)).body;
    expect(plans.total).toBe(1);
    const plan = plans.entry[0].resource;
    expect(plan.description).toBe('安全な入浴と服薬の習慣づくりを、通所介護と訪問介護で支えます。');
    expect(plan.activity.map((a: any) => a.detail.scheduledTiming.code.text)).toEqual(['週2回', '毎日3回']);
    expect((await fhir.get(`Goal?subject=Patient/${patient.id}`)).body.total).toBe(4);
    expect((await fhir.get(`Condition?subject=Patient/${patient.id}`)).body.total).toBe(2);
  });

  it('the same file again is a duplicate; a corrected plan version updates the same CarePlan', async () => {
    const again = await careplan(csvFile(FIXTURE), '', { 'x-filename': FIXTURE_NAME });
    expect(again.status).toBe(200);
    expect(json(again.text).issue[0].diagnostics).toMatch(/applied before/);
    const corrected = iconv.encode(iconv.decode(csvFile(FIXTURE), 'cp932').replace(',週2回,', ',週3回,'), 'cp932');
    const res = await careplan(corrected, '', { 'x-filename': FIXTURE_NAME.replace('090000', '100000') });
    expect(res.status, res.text).toBe(200);
    expect(json(res.text).issue[0].diagnostics, res.text).toMatch(/Stored: [1-9]/);
    const fhir = new FhirClient(stack.url, careManager);
    const all = (await fhir.get('CarePlan')).body;
    const plan = all.entry[0].resource;
    expect(all.total).toBe(1);
    expect(plan.activity.map((a: any) => a.detail.scheduledTiming.code.text)).toContain('週3回');
    expect(Number(plan.meta.versionId)).toBeGreaterThan(1);
  });

  it('errors name line and column; a file with a bad row is rejected whole unless partial acceptance is asked', async () => {
    const text = iconv.decode(csvFile(FIXTURE), 'cp932').split('\r\n');
    const bad = iconv.encode([text[0], text[1].replace(',20261101,20261101,', ',20261101,2026133,'), text[2].replace('0000123456', '0000999999'), ''].join('\r\n'), 'cp932');
    const whole = await careplan(bad, '?table=2');
    expect(whole.status).toBe(422);
    const diagnostics = json(whole.text).issue.map((i) => i.diagnostics);
    expect(diagnostics.some((d) => d.startsWith('line 2, column 居宅サービス計画作成(変更)日: '))).toBe(true);
    expect(diagnostics.some((d) => d.startsWith('line 3, column 被保険者番号: 131016:0000999999: no '))).toBe(true);

    const good = iconv.encode([text[0], text[1].replace('CP-0001', 'CP-0002').replace(/,20261101,20261101,/, ',20261102,20261102,'), text[2].replace('0000123456', '0000999999'), ''].join('\r\n'), 'cp932');
    const partial = await careplan(good, '?table=2&partial=true');
    expect(partial.status).toBe(200);
    const issues = json(partial.text).issue;
    expect(issues[0].diagnostics).toMatch(/1 of 2 rows accepted/);
    expect(issues.slice(1).map((i) => [i.severity, i.expression?.[0]])).toEqual([['error', 'line 3, column 被保険者番号']]);
  });

  it('refuses a missing column, a file not in Shift_JIS, an unknown table and a file name from another sender', async () => {
    const missing = await careplan(sjis([['CSVバージョン', '保険者番号'], ['1', '131016']]), '?table=2');
    expect(missing.status).toBe(400);
    expect(json(missing.text).issue.map((i) => i.expression?.[0])).toContain('line 1, column 被保険者番号');
    const utf8 = await careplan(Buffer.from(iconv.decode(csvFile(FIXTURE), 'cp932'), 'utf8'), '?table=2');
    expect(utf8.status).toBe(400);
    expect(json(utf8.text).issue[0].diagnostics).toMatch(/^line 1: the file is not valid Shift_JIS/);
    for (const table of ['3', '6', '7']) {
      const unsupported = await careplan(csvFile(FIXTURE), `?table=${table}`);
      expect(unsupported.status).toBe(422);
      expect(json(unsupported.text).issue[0].diagnostics).toMatch(/supported: table=user \(利用者補足情報\), table=1 \(第1表\), table=2 \(第2表\).*対応している表/);
    }
    const third = await careplan(csvFile(FIXTURE), '', { 'x-filename': 'UP3KYO_202611_1370000001_1370000002_20261101090000.CSV' });
    expect(json(third.text).issue[0].diagnostics).toMatch(/^This file is not accepted: table 3 .*no CSV layout in the ケアプランデータ連携 standard.*第3表（週間サービス計画表）は標準仕様にCSV様式がありません/);
    const other = await careplan(csvFile(FIXTURE), '', { 'x-filename': 'UP2KYO_202611_1370009999_1370000002_20261101090000.CSV' });
    expect(other.status).toBe(403);
    const list = await fetch(`${stack.url}/admin/messages?kind=careplan-csv&status=rejected`, { headers: { authorization: `Bearer ${careManager}` } });
    expect(((await list.json()) as { total: number }).total).toBeGreaterThanOrEqual(4);
  });

  it('daily vitals: Observations with LOINC codes, none for empty cells, and 急変 as a stat Communication to the 協力医療機関', async () => {
    const res = await records(csvFile('fixture-daily-vitals.csv'));
    expect(res.status).toBe(200);
    const sakura = new FhirClient(stack.url, facility);
    const [r43] = (await sakura.get(`Patient?identifier=${encodeURIComponent(RESIDENT)}|R-0043`)).body.entry.map((e: any) => e.resource);
    const obs43 = (await sakura.get(`Observation?subject=Patient/${r43.id}`)).body.entry.map((e: any) => e.resource.code.coding[0].code).sort();
    expect(obs43).toEqual(['59408-5', '8310-5', '8867-4', 'fluid-intake', 'staple-food-intake']);
    const alerts = (await sakura.get('Communication')).body;
    expect(alerts.total).toBe(1);
    expect(alerts.entry[0].resource).toMatchObject({ recipient: [{ reference: 'Organization/hospital-midori' }], payload: [{ contentString: '昼食後から発熱と呼吸苦' }] });
    expect(alerts.entry[0].resource.about).toHaveLength(6);
  });

  it('takes JSON records through the same mapping', async () => {
    const res = await records(csvFile('care-records-records.json'), '', 'application/json');
    expect(res.status).toBe(200);
    const sakura = new FhirClient(stack.url, facility);
    expect((await sakura.get('Communication')).body.total).toBe(2);
  });

  it('refuses a NUL character in a CSV file or a JSON record with 400, naming the line, and stores nothing of it', async () => {
    const before = (await new FhirClient(stack.url, facility).get('Observation?_summary=count')).body.total;
    const csv = await records(csvFile('care-records-urgent-flags.csv').toString('utf8').replace('R-0042', 'R-00\u000042'), '', 'text/csv; charset=utf-8');
    expect(csv.status).toBe(400);
    expect(json(csv.text).issue[0].diagnostics).toMatch(/^line 2: the file contains a NUL byte/);
    const kept = await fetch(`${stack.url}${csv.location}`, { headers: { authorization: `Bearer ${facility}` } }).then((r) => r.json() as Promise<any>);
    expect(kept).toMatchObject({ status: 'rejected', kind: 'care-records' });
    const recordsJson = csvFile('care-records-records.json').toString('utf8');
    const withNul = recordsJson.replace('R-0042', 'R-00\\u000042');
    const fromJson = await records(withNul, '', 'application/json');
    expect(fromJson.status).toBe(400);
    expect(json(fromJson.text).issue[0].diagnostics).toMatch(/NUL/);
    expect((await new FhirClient(stack.url, facility).get('Observation?_summary=count')).body.total).toBe(before);
  });

  it('reads the partial flag the same way on intake and on $replay (true/1/yes/on, false/0/no/off; anything else 400)', async () => {
    const file = (hour: string) => `記録日時,施設利用者ID,体温\n2026-11-25T${hour}:00:00+09:00,R-0042,36.5\n2026-11-25T${hour}:00:00+09:00,R-0099,36.5\n`;
    for (const [hour, flag] of [['01', 'yes'], ['02', 'ON'], ['03', '1'], ['04', 'true']]) {
      const res = await records(file(hour), `?partial=${flag}`);
      expect(res.status, `${flag}: ${res.text}`).toBe(200);
      expect(json(res.text).issue[0].diagnostics).toMatch(/1 of 2 rows accepted/);
    }
    const unclear = await records(file('05'), '?partial=maybe');
    expect(unclear.status).toBe(400);
    expect(json(unclear.text).issue[0].diagnostics).toMatch(/^partial must be true or false/);
    const refused = await records(file('05'), '?partial=no');
    expect(refused.status).toBe(422);
    const replay = (flag: string) => fetch(`${stack.url}${refused.location}/$replay?partial=${flag}`, { method: 'POST', headers: { authorization: `Bearer ${facility}` } });
    expect((await replay('maybe')).status).toBe(400);
    expect((await replay('off')).status).toBe(422);
    const accepted = await replay('yes');
    expect(accepted.status).toBe(200);
    expect(((await accepted.json()) as { status: string }).status).toBe('mapped');
  });

  it('refuses bad values, unknown residents and a 急変 with no 協力医療機関 to tell, naming line and column', async () => {
    const head = '記録日時,施設利用者ID,体温,急変';
    const bad = await records(`${head}\n2026-11-23T07:00:00+09:00,R-0042,abc,0\n2026-11-23T07:00:00+09:00,R-0099,36.5,0\n2026-11-23T08:00:00+09:00,R-0042,36.5,2\n`);
    expect(bad.status).toBe(422);
    expect(json(bad.text).issue.map((i) => i.expression?.[0])).toEqual(['line 2, column 体温', 'line 3, column 施設利用者ID', 'line 4, column 急変']);
    const lone = await records(`${head}\n2026-11-23T07:00:00+09:00,R-0001,39.0,1\n`, '', 'text/csv', loneFacility);
    expect(lone.status).toBe(422);
    expect(json(lone.text).issue.map((i) => i.diagnostics).join('\n')).toMatch(/協力医療機関/);
    expect((await records(`${head}\n`, '?mapping=unknown')).status).toBe(404);
    expect((await records('記録日時\n"unterminated\n')).status).toBe(400);
  });
});
