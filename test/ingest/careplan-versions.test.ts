import { readFileSync } from 'node:fs';
import iconv from 'iconv-lite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CARE_PROVIDER_NO } from '../../src/ingest/sender.js';
import { fromRoot } from '../../src/paths.js';
import { FhirClient } from '../support/fhir-client.js';
import { stackName, startTestStack, type TestStack } from '../support/stack.js';
import { post, registerSender } from './support.js';

/**
 * Versions of one 居宅サービス計画 (same 被保険者, same sender): a newer 居宅サービス計画作成(変更)日 revokes the
 * earlier CarePlan and replaces it; what a version no longer contains stops being current; an older version
 * arriving late never reactivates anything.
 */

const golden = (name: string) => readFileSync(fromRoot('test', 'golden', 'csv', name));
const FIXTURE = iconv.decode(golden('fixture-UP2KYO_202611_1370000001_1370000002_20261101090000.CSV'), 'cp932').split('\r\n');
const [HEADER, ROW1, ROW2] = FIXTURE;
const INSURED = encodeURIComponent('http://renkei.jp/fhir/NamingSystem/insured-no');

/** 第2表 of plan version `date` (YYYYMMDD) with the fixture's rows (1 and/or 2). */
function table2(date: string, rows: string[], edit: (row: string) => string = (r) => r): Buffer {
  const lines = rows.map((r) => edit(r.replace(',20261101,20261101,', `,${date},${date},`)));
  return iconv.encode([HEADER, ...lines, ''].join('\r\n'), 'cp932');
}
const fileName = (sender: string, time: string) => `UP2KYO_202611_${sender}_1370000002_${time}.CSV`;
const clinical = (c: any) => c.clinicalStatus.coding[0].code;

describe(`care-plan versions over HTTP (${stackName})`, () => {
  let stack: TestStack;
  let aoi: string;
  let kaede: string;
  let fhir: FhirClient;
  let patientId: string;
  const send = (body: Buffer, name: string, token = aoi) =>
    post(`${stack.url}/ingest/careplan-csv`, token, body, { 'content-type': 'text/csv', 'x-filename': name });
  const plans = async () => {
    const all = (await fhir.get(`CarePlan?subject=Patient/${patientId}&_count=50`)).body.entry.map((e: any) => e.resource);
    return new Map<string, any>(all.map((p: any) => [p.period.start, p]));
  };
  const read = async (reference: string) => (await fhir.get(reference)).body;
  const referenced = async (plan: any, element: 'addresses' | 'goal') => Promise.all(plan[element].map((r: any) => read(r.reference)));

  beforeAll(async () => {
    stack = await startTestStack();
    aoi = await registerSender(stack, 'cm-aoi', CARE_PROVIDER_NO, '1370000001');
    kaede = await registerSender(stack, 'cm-kaede', CARE_PROVIDER_NO, '1370000011');
    for (const token of [aoi, kaede]) {
      const user = await post(`${stack.url}/ingest/careplan-csv?table=user`, token, golden('careplan-user.sjis.csv'), { 'content-type': 'text/csv' });
      expect(user.status, user.text).toBe(200);
    }
    fhir = new FhirClient(stack.url, aoi);
    patientId = (await fhir.get(`Patient?identifier=${INSURED}|131016:0000123456`)).body.entry[0].resource.id;
    const v1 = await send(table2('20261101', [ROW1, ROW2]), fileName('1370000001', '20261101090000'));
    expect(v1.status, v1.text).toBe(200);
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('a newer 作成(変更)日 revokes the earlier CarePlan, which the new one replaces; its 課題 and Goals stop being current', async () => {
    const v2 = await send(table2('20261201', [ROW1, ROW2]), fileName('1370000001', '20261201090000'));
    expect(v2.status, v2.text).toBe(200);
    const byDate = await plans();
    const [earlier, newer] = [byDate.get('2026-11-01'), byDate.get('2026-12-01')];
    expect(earlier.status).toBe('revoked');
    expect(earlier.activity.map((a: any) => a.detail.status)).toEqual(['stopped', 'stopped']);
    expect(newer.status).toBe('active');
    expect(newer.replaces).toEqual([{ reference: `CarePlan/${earlier.id}` }]);
    expect((await referenced(earlier, 'addresses')).map(clinical)).toEqual(['inactive', 'inactive']);
    const endedGoals = await referenced(earlier, 'goal');
    expect(endedGoals.map((g) => g.lifecycleStatus)).toEqual(['completed', 'completed', 'completed', 'completed']);
    expect(endedGoals[0].statusDate).toBe('2026-12-01');
    expect((await referenced(newer, 'addresses')).map(clinical)).toEqual(['active', 'active']);
    expect((await referenced(newer, 'goal')).every((g) => g.lifecycleStatus === 'active')).toBe(true);
  });

  it('a corrected file of the same version that no longer sends a 課題 ends it, its Goals and its activity, deleting nothing', async () => {
    const res = await send(table2('20261201', [ROW1]), fileName('1370000001', '20261202090000'));
    expect(res.status, res.text).toBe(200);
    const plan = (await plans()).get('2026-12-01');
    expect(plan.status).toBe('active');
    expect(plan.activity.map((a: any) => [a.detail.description, a.detail.status])).toEqual([
      ['入浴介助（通所介護）', 'scheduled'], ['服薬確認・声かけ（訪問介護）', 'stopped'],
    ]);
    const needs = await Promise.all(['1', '2'].map(async (no) => (await fhir.get(`Condition?subject=Patient/${patientId}&_count=50`)).body.entry
      .map((e: any) => e.resource).filter((c: any) => c.recordedDate === '2026-12-01' && c.code.text === (no === '1' ? '一人での入浴が難しく清潔を保てない' : '服薬を忘れることがある'))[0]));
    expect(needs.map(clinical)).toEqual(['active', 'inactive']);
    expect(plan.addresses).toHaveLength(1);
    const goals = (await fhir.get(`Goal?subject=Patient/${patientId}&_count=50`)).body.entry.map((e: any) => e.resource);
    const current = new Set(plan.goal.map((g: any) => g.reference.slice('Goal/'.length)));
    expect(goals.filter((g: any) => current.has(g.id)).map((g: any) => g.lifecycleStatus)).toEqual(['active', 'active']);
    expect(goals.filter((g: any) => !current.has(g.id)).every((g: any) => g.lifecycleStatus === 'completed')).toBe(true);
    expect(goals).toHaveLength(8);
  });

  it('an older 作成(変更)日 arriving later is stored as revoked and changes nothing of the current plan', async () => {
    const before = (await plans()).get('2026-12-01');
    const late = await send(table2('20261015', [ROW1]), fileName('1370000001', '20261203090000'));
    expect(late.status, late.text).toBe(200);
    const corrected = await send(table2('20261101', [ROW1, ROW2], (r) => r.replace(',週2回,', ',週3回,')), fileName('1370000001', '20261204090000'));
    expect(corrected.status, corrected.text).toBe(200);
    const byDate = await plans();
    expect(byDate.size).toBe(3);
    const [oldest, earlier, current] = [byDate.get('2026-10-15'), byDate.get('2026-11-01'), byDate.get('2026-12-01')];
    expect(oldest.status).toBe('revoked');
    expect((await referenced(oldest, 'addresses')).map(clinical)).toEqual(['inactive']);
    expect(earlier.status).toBe('revoked');
    expect(earlier.replaces).toEqual([{ reference: `CarePlan/${oldest.id}` }]);
    expect(earlier.activity[0].detail.scheduledTiming.code.text).toBe('週3回');
    expect((await referenced(earlier, 'addresses')).map(clinical)).toEqual(['inactive', 'inactive']);
    expect(current.status).toBe('active');
    expect(current.meta.versionId).toBe(before.meta.versionId);
    expect((await referenced(current, 'addresses')).map(clinical)).toEqual(['active']);
  });

  it('two newer versions sent at once leave exactly one current plan, the newest', async () => {
    const answers = await Promise.all([
      send(table2('20270201', [ROW1]), fileName('1370000001', '20270201090000')),
      send(table2('20270301', [ROW1]), fileName('1370000001', '20270301090000')),
    ]);
    expect(answers.map((a) => a.status)).toEqual([200, 200]);
    const byDate = await plans();
    expect([...byDate.values()].filter((p) => p.status === 'active').map((p) => p.period.start)).toEqual(['2027-03-01']);
    expect(byDate.get('2027-02-01').status).toBe('revoked');
    // Which of the two was stored first decides what the newest replaces: the one before it, or the plan current until then.
    const replaced = [byDate.get('2027-02-01').id, byDate.get('2026-12-01').id].map((id) => ({ reference: `CarePlan/${id}` }));
    expect(replaced).toContainEqual(byDate.get('2027-03-01').replaces[0]);
  });

  it('with partial acceptance, a refused row ends nothing: its 課題, Goals and activity stay as they were', async () => {
    const full = await send(table2('20270401', [ROW1, ROW2]), fileName('1370000001', '20270401090000'));
    expect(full.status, full.text).toBe(200);
    const bad = table2('20270401', [ROW1, ROW2], (r) => r.replace(',毎日3回,20261101-20270131,', ',毎日3回,2027-99-99,'));
    const res = await post(`${stack.url}/ingest/careplan-csv?partial=true`, aoi, bad, { 'content-type': 'text/csv', 'x-filename': fileName('1370000001', '20270402090000') });
    expect(res.status, res.text).toBe(200);
    expect(res.text).toMatch(/1 of 2 rows accepted/);
    const plan = (await plans()).get('2027-04-01');
    expect(plan.status).toBe('active');
    expect(plan.activity.map((a: any) => [a.detail.scheduledTiming.code.text, a.detail.status])).toEqual([
      ['週2回', 'scheduled'], ['毎日3回', 'scheduled'],
    ]);
    expect((await referenced(plan, 'addresses')).map(clinical)).toEqual(['active', 'active']);
    expect((await referenced(plan, 'goal')).map((g) => g.lifecycleStatus)).toEqual(['active', 'active', 'active', 'active']);
  });

  it("another sender's plan for the same 被保険者 leaves this sender's plan current", async () => {
    const other = await send(table2('20270101', [ROW1]), fileName('1370000011', '20270101090000'), kaede);
    expect(other.status, other.text).toBe(200);
    expect((await plans()).get('2027-04-01').status).toBe('active');
    const theirs = (await new FhirClient(stack.url, kaede).get('CarePlan')).body.entry.map((e: any) => e.resource);
    expect(theirs.map((p: any) => [p.status, p.replaces])).toEqual([['active', undefined]]);
  });
});
