import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { prepareCareRecords } from '../../src/ingest/care-records.js';
import { prepareCareplan } from '../../src/ingest/careplan.js';
import { CARE_PROVIDER_NO, senderFactsOf } from '../../src/ingest/sender.js';
import { assemble, mapTableRows, type PreparedTable } from '../../src/ingest/table-intake.js';
import { validateMapped } from '../../src/mapping/validate.js';
import { fromRoot } from '../../src/paths.js';

/**
 * Golden files for care-plan CSV and care records: each case of cases.json (the file and how it is sent)
 * and the resources its rows make, merged across rows (the .json beside the file). Subjects appear as
 * conditional references (`Patient?identifier=…`): the store resolves them to the sender's Patient.
 * UPDATE_GOLDEN=1 writes a missing .json from the current output, to be checked by hand.
 */

const DIR = fromRoot('test', 'golden', 'csv');
const { cases } = JSON.parse(readFileSync(path.join(DIR, 'cases.json'), 'utf8')) as {
  cases: { file: string; endpoint: 'careplan-csv' | 'care-records'; table?: string; fileName?: string; contentType?: string }[];
};
const careManager = senderFactsOf('cm-aoi', { resourceType: 'Organization', identifier: [{ system: CARE_PROVIDER_NO, value: '1370000001' }] });
const facility = senderFactsOf('facility-sakura', { resourceType: 'Organization', identifier: [{ system: CARE_PROVIDER_NO, value: '1370000005' }] });
const PARTNERS = [{ reference: 'Organization/hospital-midori', display: 'みどり病院' }];

function run(c: (typeof cases)[number]) {
  const bytes = readFileSync(path.join(DIR, c.file));
  const prepared: PreparedTable = c.endpoint === 'careplan-csv'
    ? prepareCareplan(bytes, { table: c.table, fileName: c.fileName, contentType: c.contentType }, careManager)
    : prepareCareRecords(bytes, { contentType: c.contentType });
  const facts = c.endpoint === 'careplan-csv' ? careManager : facility;
  const rows = mapTableRows(prepared, facts, PARTNERS);
  const assembly = assemble(rows, new Map());
  return { prepared, rows, assembly };
}

describe('care-plan CSV and care-record golden files', () => {
  it('cover at least five files of both endpoints', () => {
    expect(cases.length).toBeGreaterThanOrEqual(5);
    expect(new Set(cases.map((c) => c.endpoint))).toEqual(new Set(['careplan-csv', 'care-records']));
  });

  describe.each(cases.map((c) => [c.file, c] as const))('%s', (_file, c) => {
    it('maps every row, merges them into the expected resources, and they validate', () => {
      const { prepared, rows, assembly } = run(c);
      const issues = [...rows.values()].flatMap((o) => o.issues);
      expect(issues).toEqual([]);
      expect([...assembly.failures]).toEqual([]);
      const actual = {
        mapping: prepared.engine.spec.id,
        ...(prepared.messageTime ? { messageTime: prepared.messageTime.toISOString() } : {}),
        rows: prepared.table.rows.map((r) => r.line),
        lookups: [...new Set([...rows.values()].flatMap((o) => o.lookups.map((l) => l.reference)))],
        resources: assembly.resources.map((r) => ({ name: r.name, ...(r.identity ? { identity: r.identity } : {}), resource: r.resource })),
      };
      const expectedFile = path.join(DIR, `${c.file.replace(/\.(csv|json)$/i, '')}.expected.json`);
      if (process.env.UPDATE_GOLDEN && !existsSync(expectedFile)) writeFileSync(expectedFile, `${JSON.stringify(actual, null, 2)}\n`);
      expect(actual).toEqual(JSON.parse(readFileSync(expectedFile, 'utf8')));
      expect(validateMapped(assembly.resources)).toEqual([]);
    });
  });
});

describe('what the shared fixtures must become', () => {
  it('第2表: one CarePlan for the 被保険者, a Condition per 課題, long-term Goals with short-term milestones, activities by 事業所番号 with 頻度', () => {
    const { assembly } = run(cases[0]);
    const byType = (t: string) => assembly.resources.filter((r) => r.resourceType === t).map((r) => r.resource as Record<string, any>);
    const [plan] = byType('CarePlan');
    expect(byType('CarePlan')).toHaveLength(1);
    expect(plan.subject.reference).toBe('Patient?identifier=http%3A%2F%2Frenkei.jp%2Ffhir%2FNamingSystem%2Finsured-no|131016%3A0000123456');
    expect(plan.activity).toHaveLength(2);
    expect(plan.activity[0].detail.performer[0]).toEqual({
      type: 'Organization', identifier: { system: CARE_PROVIDER_NO, value: '1370000002' }, display: 'デイサービスひまわり',
    });
    expect(plan.activity[0].detail.code.coding[0]).toMatchObject({ code: '15', display: '通所介護' });
    expect(plan.activity[0].detail.scheduledTiming).toMatchObject({ code: { text: '週2回' }, repeat: { frequency: 2, period: 1, periodUnit: 'wk' } });
    expect(byType('Condition').map((c) => c.code.text)).toEqual(['一人での入浴が難しく清潔を保てない', '服薬を忘れることがある']);
    const goals = byType('Goal');
    const longTerm = goals.filter((g) => g.category[0].coding[0].code === 'long-term');
    expect(longTerm).toHaveLength(2);
    const milestone = longTerm[0].extension[0].extension[1].valueReference.reference;
    expect(goals.find((g) => `Goal/${g.id}` === milestone)?.description.text).toBe('介助で安全に入浴できる');
  });

  it('daily vitals: LOINC Observations, no Observation for an empty cell, and 急変 as a stat Communication to the 協力医療機関', () => {
    const { assembly } = run(cases[4]);
    const observations = assembly.resources.filter((r) => r.resourceType === 'Observation').map((r) => r.resource as Record<string, any>);
    const codes = (resident: string, time: string) => observations
      .filter((o) => o.subject.reference.endsWith(encodeURIComponent(resident)) && o.effectiveDateTime === time)
      .map((o) => o.code.coding[0].code).sort();
    expect(codes('R-0043', '2026-11-20T07:40:00+09:00')).toEqual(['59408-5', '8310-5', '8867-4', 'fluid-intake', 'staple-food-intake']);
    expect(codes('R-0042', '2026-11-20T07:30:00+09:00')).toContain('85354-9');
    const [alert] = assembly.resources.filter((r) => r.resourceType === 'Communication').map((r) => r.resource as Record<string, any>);
    expect(alert).toMatchObject({ priority: 'stat', recipient: PARTNERS, payload: [{ contentString: '昼食後から発熱と呼吸苦' }] });
    expect(alert.about).toHaveLength(6);
  });
});
