import { describe, expect, it } from 'vitest';
import { mappings } from '../../src/ingest/mappings.js';
import { MappingEngine, MappingError } from '../../src/mapping/engine.js';
import { mergeInto, overlayTopLevel } from '../../src/mapping/merge.js';
import { CellValue, RowSource } from '../../src/mapping/source.js';
import { assertSpec, SpecError, type MappingSpec } from '../../src/mapping/spec.js';
import { Choice, compact, setAt } from '../../src/mapping/target.js';
import { TRANSFORMS, TransformError } from '../../src/mapping/transforms/index.js';
import { codeSystems } from '../../src/mapping/code-systems.js';
import { parseFrequency } from '../../src/mapping/transforms/text.js';

const ctx = { codeSystems: codeSystems() };
const apply = (name: string, inputs: string[], args: Record<string, unknown> = {}) =>
  TRANSFORMS[name].apply(inputs.map((t) => new CellValue(t)), args, ctx);
const anyPath = () => undefined;
const vars = { 'sender.organizationId': 'org-1', 'sender.patientIdSystem': 'urn:test:patients' };

describe('target paths', () => {
  it('writes nested elements, appends with [+], continues the last with [=], and completes value[x]', () => {
    const r: Record<string, any> = {};
    setAt(r, 'dosageInstruction[0].timing.code.text', '朝食後');
    setAt(r, 'category[+]', { text: 'a' });
    setAt(r, 'category[+]', { text: 'b' });
    setAt(r, 'activity[+].detail.status', 'scheduled');
    setAt(r, 'activity[=].detail.description', '入浴');
    setAt(r, 'value[x]', new Choice('Quantity', { value: 1 }));
    expect(r).toEqual({
      dosageInstruction: [{ timing: { code: { text: '朝食後' } } }],
      category: [{ text: 'a' }, { text: 'b' }],
      activity: [{ detail: { status: 'scheduled', description: '入浴' } }],
      valueQuantity: { value: 1 },
    });
  });

  it('drops the holes left when a lower index had no value', () => {
    const r: Record<string, any> = {};
    setAt(r, 'component[1].code', 'x');
    expect(compact(r)).toEqual({ component: [{ code: 'x' }] });
  });
});

describe('transforms', () => {
  it('dates and times: HL7 TS and CSV forms to FHIR with +09:00, precision kept, impossible dates refused', () => {
    expect(apply('dateTime', ['20261105101530'])).toBe('2026-11-05T10:15:30+09:00');
    expect(apply('dateTime', ['202611051015'])).toBe('2026-11-05T10:15:00+09:00');
    expect(apply('dateTime', ['2026110510'])).toBe('2026-11-05T10:00:00+09:00');
    expect(apply('dateTime', ['20261105101530.984+0000'])).toBe('2026-11-05T10:15:30.984+00:00');
    expect(apply('dateTime', ['20261105'])).toBe('2026-11-05');
    expect(apply('dateTime', ['202611'])).toBe('2026-11');
    expect(apply('dateTime', ['2026/11/20 7:30'])).toBe('2026-11-20T07:30:00+09:00');
    expect(apply('dateTime', ['２０２６－１１－２０T０７:３０:００'])).toBe('2026-11-20T07:30:00+09:00');
    expect(apply('date', ['20261105101530'])).toBe('2026-11-05');
    expect(apply('instant', ['20261105'])).toBeUndefined();
    expect(() => apply('dateTime', ['20260230'])).toThrow(TransformError);
    expect(() => apply('dateTime', ['20261105256000'])).toThrow(/hour/);
    expect(() => apply('date', ['昨日'])).toThrow(/not a date/);
    expect(apply('period', ['20261101-20270430'])).toEqual({ start: '2026-11-01', end: '2027-04-30' });
    expect(apply('period', ['2026/11/01～2027/01/31'])).toEqual({ start: '2026-11-01', end: '2027-01-31' });
    expect(() => apply('period', ['20270430-20261101'])).toThrow(/ends before/);
  });

  it('names: XPN with its representation, a name written as text', () => {
    const xpn = { text: '', part: (i: number) => new CellValue(['山田', '太郎', '', '', '', '', 'L', 'I'][i - 1] ?? ''), parts: () => [], isEmpty: false, isNull: false };
    expect(TRANSFORMS.humanName.apply([xpn], {}, ctx)).toEqual({
      extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation', valueCode: 'IDE' }],
      use: 'official', text: '山田 太郎', family: '山田', given: ['太郎'],
    });
    expect(apply('nameText', ['ヤマダ　ハナ'], { representation: 'SYL' })).toMatchObject({ family: 'ヤマダ', given: ['ハナ'], text: 'ヤマダ ハナ' });
  });

  it('numbers: full-width digits read, ranges enforced, non-numbers refused', () => {
    expect(apply('quantity', ['３６．５'], { unit: 'Cel', min: 30, max: 45 })).toEqual({ value: 36.5, unit: 'Cel', system: 'http://unitsofmeasure.org', code: 'Cel' });
    expect(() => apply('quantity', ['99'], { unit: 'Cel', min: 30, max: 45 })).toThrow(/above 45/);
    expect(() => apply('decimal', ['abc'])).toThrow(/not a number/);
    expect(() => apply('integer', ['1.5'])).toThrow(/whole number/);
  });

  it('codes: system names made URIs, HOT by code length, local tables without a system, lookups refuse unknown values', () => {
    expect(codeSystems().resolve('HOT', '1234567')).toBe('http://medis.or.jp/CodeSystem/master-HOT7');
    expect(codeSystems().resolve('HOT', '1234567890123')).toBe('http://medis.or.jp/CodeSystem/master-HOT13');
    expect(codeSystems().resolve('99XYZ', '1')).toBeUndefined();
    expect(apply('lookup', ['M'], { table: { M: 'male' } })).toBe('male');
    expect(() => apply('lookup', ['Q'], { table: { M: 'male' } })).toThrow(/not one of M/);
    expect(apply('conceptByName', ['通所介護'], { system: 'http://renkei.jp/fhir/CodeSystem/ltc-service-type' }))
      .toEqual({ coding: [{ system: 'http://renkei.jp/fhir/CodeSystem/ltc-service-type', code: '15', display: '通所介護' }], text: '通所介護' });
    expect(apply('conceptByName', ['地域の見守り'], { system: 'http://renkei.jp/fhir/CodeSystem/ltc-service-type' })).toEqual({ text: '地域の見守り' });
  });

  it('頻度: the usual ways of writing a frequency parse, anything else keeps only its text', () => {
    expect(parseFrequency('週2回')).toEqual({ frequency: 2, period: 1, periodUnit: 'wk' });
    expect(parseFrequency('毎日３回')).toEqual({ frequency: 3, period: 1, periodUnit: 'd' });
    expect(parseFrequency('2週に1回')).toEqual({ frequency: 1, period: 2, periodUnit: 'wk' });
    expect(parseFrequency('月・木')).toEqual({ frequency: 1, period: 1, periodUnit: 'd', dayOfWeek: ['mon', 'thu'] });
    expect(parseFrequency('必要時')).toBeUndefined();
    expect(apply('frequencyTiming', ['必要時'])).toEqual({ code: { text: '必要時' } });
  });
});

const spec = (resources: MappingSpec['resources']): MappingSpec => ({ id: 'test/spec', description: 'test', source: 'table', resources });

describe('the engine', () => {
  it('makes deterministic ids from sender and key, and refers between resources by name', () => {
    const engine = new MappingEngine(spec([
      { name: 'patient', type: 'Patient', key: ['id'], rules: [{ to: 'identifier[0].value', from: 'id' }] },
      { name: 'obs', type: 'Observation', key: ['id', '=temp'], rules: [{ to: 'subject', ref: 'patient' }, { to: 'status', const: 'final' }] },
    ]), anyPath);
    const out = engine.run(new RowSource({ id: 'P1' }, 2), { vars });
    const again = engine.run(new RowSource({ id: 'P1' }, 9), { vars });
    expect(out.issues).toEqual([]);
    expect(out.resources.map((r) => r.id)).toEqual(again.resources.map((r) => r.id));
    expect(out.resources[1].resource.subject).toEqual({ reference: `Patient/${out.resources[0].id}` });
    const other = engine.run(new RowSource({ id: 'P1' }, 2), { vars: { ...vars, 'sender.organizationId': 'org-2' } });
    expect(other.resources[0].id).not.toBe(out.resources[0].id);
  });

  it('reports a missing key, a required element, and a bad value at their line and column', () => {
    const engine = new MappingEngine(spec([{
      name: 'obs', type: 'Observation', key: ['id', '?optional'],
      rules: [{ to: 'status', from: 'status', required: true }, { to: 'valueQuantity', from: 'value', transform: 'quantity', args: { unit: 'Cel' } }],
    }]), anyPath);
    expect(engine.run(new RowSource({ status: 'final' }, 3), { vars }).issues[0]).toMatchObject({ kind: 'required', location: { line: 3, column: 'id' } });
    const issues = engine.run(new RowSource({ id: 'x', value: 'abc' }, 4), { vars }).issues;
    expect(issues.map((i) => [i.kind, i.location.column])).toEqual([['required', 'status'], ['data-type', 'value']]);
  });

  it('looks subjects up by identifier instead of making them, and merges parts of one resource', () => {
    const engine = new MappingEngine(spec([
      { name: 'who', type: 'Patient', key: ['id'], lookup: { system: '{{sender.patientIdSystem}}', value: 'id', describe: 'resident' } },
      { name: 'plan', type: 'CarePlan', key: ['plan'], rules: [{ to: 'subject', ref: 'who' }, { to: 'activity[0].detail.description', from: 'what' }] },
    ]), anyPath);
    const out = engine.run(new RowSource({ id: 'R-1', plan: 'P', what: '入浴' }, 2), { vars });
    expect(out.lookups).toEqual([expect.objectContaining({ system: 'urn:test:patients', value: 'R-1', location: { line: 2, column: 'id' } })]);
    expect(out.resources).toHaveLength(1);
    const a = { activity: [{ d: 1 }], status: 'active' };
    expect(mergeInto(a, { activity: [{ d: 2 }, { d: 1 }], status: 'active' })).toBeUndefined();
    expect(a.activity).toEqual([{ d: 1 }, { d: 2 }]);
    expect(mergeInto(a, { status: 'completed' })).toBe('status');
  });

  it('applies HL7 update semantics over a stored version: absent elements kept, deleted ones removed', () => {
    const stored = { resourceType: 'Patient', id: 'p', meta: { versionId: '3' }, gender: 'male', address: [{ text: '旧住所' }], telecom: [{ value: '1' }] };
    expect(overlayTopLevel(stored, { resourceType: 'Patient', id: 'p', gender: 'female' }, ['telecom']))
      .toEqual({ resourceType: 'Patient', id: 'p', gender: 'female', address: [{ text: '旧住所' }] });
  });

  it('refuses a mapping file with an unknown transform, a bad path, wrong inputs or an unknown variable', () => {
    const bad = (rules: MappingSpec['resources'][0]['rules']) => () => new MappingEngine(spec([{ name: 'a', type: 'Patient', key: ['x'], rules }]), anyPath);
    expect(bad([{ to: 'gender', from: 'x', transform: 'nope' }])).toThrow(MappingError);
    expect(bad([{ to: 'a..b', from: 'x' }])).toThrow(/not a target path/);
    expect(bad([{ to: 'a', from: ['x', 'y'], transform: 'dateTime' }])).toThrow(/takes 1–1 inputs/);
    expect(bad([{ to: 'a', from: 'x', transform: 'lookup' }])).toThrow(/args.table/);
    expect(() => assertSpec({ ...spec([{ name: 'a', type: 'Patient', key: ['x'], rules: [{ to: 'a', const: '{{nope}}' }] }]) }, 'f')).toThrow(SpecError);
    expect(() => assertSpec({ ...spec([{ name: 'a', type: 'Patient', key: ['x'], rules: [{ to: 'a', const: 1, from: 'x' }] }]) }, 'f')).toThrow(/exactly one/);
  });

  it('loads every mapping file under mappings/', () => {
    const registry = mappings();
    expect(registry.messageTypes()).toEqual(expect.arrayContaining(['ADT^A01', 'ADT^A03', 'ADT^A04', 'ADT^A08', 'RDE^O11', 'OUL^R22', 'PPR^ZD1']));
    expect(registry.ids('careplan-csv/')).toEqual(['careplan-csv/table1', 'careplan-csv/table2', 'careplan-csv/user']);
    expect(registry.ids('care-records/')).toEqual(['care-records/daily-vitals']);
  });
});
