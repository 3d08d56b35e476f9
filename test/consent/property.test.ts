import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditRecorder } from '../../src/audit/recorder.js';
import type { Caller } from '../../src/fhir/caller.js';
import { FhirError } from '../../src/fhir/outcome.js';
import { FhirService } from '../../src/fhir/service.js';
import { organizationClient, type FhirClient } from '../support/fhir-client.js';
import { bodyTemperature, consent, medicationRequest, patient } from '../support/resources.js';
import { stackName, startTestStack, type TestStack } from '../support/stack.js';
import {
  accepted, CODE, CODE_KEYS, linked, ORG, ORG_KEYS, PATIENTS, provisionJson, PURPOSES, RESTRICTED, TYPES, universe, visible,
  type Agreement, type Asker, type Datum, type ModelConsent, type ModelProvision, type PatientKey, type World,
} from './model.js';

/**
 * Thousands of generated worlds (Consents by the clinic and the facility with nested provisions over
 * actors, types, purposes, periods, dataPeriods, codes and security labels; patient links; a
 * 協力医療機関 agreement) over a fixed set of records: every answer of the gateway (search results
 * as whole sets, totals, reads, patient= searches following links, _include, _revinclude, history,
 * $everything) must equal the reference model's: zero leaks, zero wrongful denials.
 */
const WORLDS = Number(process.env.CONSENT_WORLDS ?? 2000);
const HTTP_WORLDS = Number(process.env.CONSENT_HTTP_WORLDS ?? 40);
const REASON = '急変時の対応 / sudden deterioration';
const ASKERS: Asker[] = [
  { org: 'clinic', purpose: 'TREAT', breakGlass: false }, { org: 'facility', purpose: 'TREAT', breakGlass: false },
  { org: 'hospital', purpose: 'TREAT', breakGlass: false }, { org: 'stranger', purpose: 'TREAT', breakGlass: false },
  { org: 'facility', purpose: 'HPAYMT', breakGlass: false }, { org: 'hospital', purpose: 'ETREAT', breakGlass: true },
  { org: 'stranger', purpose: 'ETREAT', breakGlass: true },
];

// ---- generators --------------------------------------------------------------------------------------
/** Stated in about `percent` % of provisions, left out (inherited) otherwise. */
const sometimes = <T>(percent: number, arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> =>
  fc.oneof({ arbitrary: fc.constant(undefined), weight: 100 - percent }, { arbitrary: arb, weight: percent });
const provision = (depth: number, type?: fc.Arbitrary<'permit' | 'deny'>): fc.Arbitrary<ModelProvision> => fc.record({
  type: type ?? fc.constantFrom('permit' as const, 'deny' as const),
  actors: sometimes(50, fc.subarray(ORG_KEYS, { minLength: 1 })),
  classes: sometimes(40, fc.subarray([...TYPES], { minLength: 1 })),
  purposes: sometimes(25, fc.subarray([...PURPOSES], { minLength: 1 })),
  codes: sometimes(15, fc.subarray(CODE_KEYS, { minLength: 1 })),
  restricted: fc.oneof({ arbitrary: fc.constant(false), weight: 85 }, { arbitrary: fc.constant(true), weight: 15 }),
  period: fc.oneof({ arbitrary: fc.constant('none' as const), weight: 7 }, fc.constantFrom('current' as const, 'past' as const, 'future' as const)),
  dataPeriod: fc.oneof({ arbitrary: fc.constant('none' as const), weight: 6 }, fc.constantFrom('2025' as const, '2026' as const)),
  children: depth > 0 ? fc.array(provision(depth - 1), { maxLength: 2 }) : fc.constant([]),
});
const modelConsent: fc.Arbitrary<ModelConsent> = fc.record({
  recorder: fc.constantFrom('clinic' as const, 'clinic' as const, 'facility' as const),
  patient: fc.constantFrom(...PATIENTS),
  active: fc.constantFrom(true, true, true, false),
  root: provision(2, fc.constantFrom('permit' as const, 'permit' as const, 'deny' as const)),
});
const world: fc.Arbitrary<World> = fc.record({
  consents: fc.array(modelConsent, { minLength: 1, maxLength: 3 }),
  links: fc.record({ f0: fc.boolean(), f1: fc.boolean() }),
  agreement: fc.constantFrom<Agreement>('none', 'active', 'inactive', 'ended'),
});
const probes = fc.record({
  /** Who asks in this world (each world asks a few; the worlds together ask everyone often). */
  askers: fc.subarray(ASKERS, { minLength: 2, maxLength: 3 }),
  reads: fc.array(fc.nat(), { minLength: 3, maxLength: 3 }),
  asker: fc.nat(ASKERS.length - 1),
  patient: fc.constantFrom(...PATIENTS),
});

const AGREEMENTS: Record<Exclude<Agreement, 'none'>, { active: boolean; period: { start: string; end?: string } }> = {
  active: { active: true, period: { start: '2020-04-01' } },
  inactive: { active: false, period: { start: '2020-04-01' } },
  ended: { active: true, period: { start: '2019-04-01', end: '2020-03-31' } },
};

describe(`consent decisions against a reference model (${stackName})`, () => {
  let stack: TestStack;
  let fhir: FhirService;
  const http = {} as Record<keyof typeof ORG, FhirClient>;
  const data = universe();
  const ids = new Map<string, string>(); // datum name → id
  const names = new Map<string, string>(); // `Type/id` → datum name
  const patientBodies = {} as Record<PatientKey, Record<string, unknown>>;
  let state: World = { consents: [], links: { f0: false, f1: false }, agreement: 'none' };
  const admin: Caller = { admin: true };
  const caller = (a: { org: keyof typeof ORG; purpose?: string; breakGlass?: boolean }): Caller => ({
    admin: false, organizationId: ORG[a.org], clientId: `${a.org}-client`, purposeOfUse: a.purpose ?? 'TREAT',
    ...(a.breakGlass ? { breakGlassReason: REASON } : {}),
  });
  const seen = { permitted: 0, denied: 0 };

  beforeAll(async () => {
    stack = await startTestStack();
    const { services } = stack.gateway;
    // The decisions are under test here, not the audit trail: its entries go nowhere.
    fhir = new FhirService(services.db, services.repo, new AuditRecorder(async () => {}));
    for (const key of ORG_KEYS) http[key] = await organizationClient(stack, ORG[key]);
    const pid = (p: PatientKey) => ids.get(`Patient ${p}`)!;
    for (const d of data) {
      const body = resourceOf(d, d.type === 'Patient' ? '' : pid(d.patient));
      const id = idOf((await fhir.create(caller({ org: d.owner }), body, d.type)).location);
      ids.set(d.name, id);
      names.set(`${d.type}/${id}`, d.name);
      if (d.type === 'Patient') patientBodies[d.patient] = { ...body, id };
    }
  }, 120_000);
  afterAll(() => stack?.stop());

  /** Brings the store to the world: links and agreement as stated, the world's Consents written. */
  async function enter(w: World): Promise<{ consentData: Datum[]; written: { id: string; recorder: keyof typeof ORG }[] }> {
    for (const resident of ['f0', 'f1'] as const) {
      if (w.links[resident] === state.links[resident]) continue;
      const partner = resident === 'f0' ? 'c0' : 'c1';
      const body: Record<string, unknown> = { ...patientBodies[resident], ...(w.links[resident] ? { link: [{ other: { reference: `Patient/${ids.get(`Patient ${partner}`)}` }, type: 'seealso' }] } : {}) };
      await fhir.update(admin, 'Patient', body.id as string, body);
    }
    if (w.agreement !== state.agreement) {
      if (w.agreement === 'none') await fhir.delete(admin, 'OrganizationAffiliation', 'pm-agreement');
      else await fhir.update(admin, 'OrganizationAffiliation', 'pm-agreement', agreement(AGREEMENTS[w.agreement]));
    }
    state = { ...w, consents: [] };
    const consentData: Datum[] = [];
    const written: { id: string; recorder: keyof typeof ORG }[] = [];
    for (const [i, c] of w.consents.entries()) {
      const body = { ...consent(ids.get(`Patient ${c.patient}`)!, ORG[c.recorder], {}, c.active ? 'active' : 'inactive'), provision: provisionJson(c.root) };
      const made = await fhir.create(caller({ org: c.recorder }), body, 'Consent').catch((err: unknown) => err);
      if (!accepted(c, data)) {
        expect((made as FhirError).status, 'a Consent by a non-custodian is refused').toBe(422);
        continue;
      }
      if (made instanceof Error) throw made;
      const id = idOf((made as { location?: string }).location);
      const datum: Datum = { name: `Consent ${i}`, type: 'Consent', owner: c.recorder, patient: c.patient, year: '2026', codes: [], restricted: false };
      consentData.push(datum);
      written.push({ id, recorder: c.recorder });
      ids.set(datum.name, id);
      names.set(`Consent/${id}`, datum.name);
    }
    return { consentData, written };
  }

  /** Removes the world's Consents, and the break-glass notices it produced (they would pile up in $everything). */
  async function leave(written: { id: string; recorder: keyof typeof ORG }[]) {
    for (const c of written) {
      names.delete(`Consent/${c.id}`);
      await fhir.delete(caller({ org: c.recorder }), 'Consent', c.id);
    }
    const { result } = await fhir.search(admin, 'Communication', [['_count', '1000'], ['_elements', 'id']]);
    for (const notice of result.matches) await fhir.delete(admin, 'Communication', notice.id);
  }

  const label = (rows: { resourceType: string; id: string }[]) =>
    rows.filter((r) => (TYPES as readonly string[]).includes(r.resourceType)).map((r) => names.get(`${r.resourceType}/${r.id}`) ?? `unknown ${r.resourceType}/${r.id}`).sort();

  it('every search, read, link, include, history and $everything answer equals the model (service layer)', async () => {
    await fc.assert(fc.asyncProperty(world, probes, async (w, probe) => {
      const { consentData, written } = await enter(w);
      const all = [...data, ...consentData];
      const expected = (ask: Asker, filter: (d: Datum) => boolean) => all.filter((d) => filter(d) && count(visible(w, all, ask, d))).map((d) => d.name).sort();
      const count = (v: boolean) => { seen[v ? 'permitted' : 'denied']++; return v; };
      const checks: Promise<void>[] = [];
      const check = (what: string, actual: Promise<string[]>, want: string[]) =>
        checks.push(actual.then((got) => expect(got, what).toEqual(want)));
      for (const ask of probe.askers) {
        const who = caller(ask);
        const tag = `${ask.org}/${ask.purpose}`;
        for (const type of TYPES) {
          check(`${tag} ${type}?`, fhir.search(who, type, [['_count', '100'], ['_total', 'accurate']]).then(({ result }) => {
            expect(result.total).toBe(result.matches.length);
            return label(result.matches);
          }), expected(ask, (d) => d.type === type));
        }
        for (const p of ['c0', 'f0'] as const) {
          const within = linked(w, p);
          check(`${tag} Observation?patient=${p}`, fhir.search(who, 'Observation', [['patient', ids.get(`Patient ${p}`)!], ['_count', '100']])
            .then(({ result }) => label(result.matches)), expected(ask, (d) => d.type === 'Observation' && within.includes(d.patient)));
        }
        for (const n of probe.reads) {
          const d = all[n % all.length];
          checks.push(fhir.read(who, d.type, ids.get(d.name)!).then(() => true, (e) => {
            if (e instanceof FhirError && e.status === 404) return false;
            throw e;
          }).then((v) => expect(v, `${tag} read ${d.name}`).toBe(visible(w, all, ask, d))));
        }
      }
      const ask = ASKERS[probe.asker];
      const who = caller(ask);
      check('Observation?_include=Observation:subject', fhir.search(who, 'Observation', [['_include', 'Observation:subject'], ['_count', '100']])
        .then(({ result }) => label(result.included)), (() => {
        const subjects = new Set(all.filter((d) => d.type === 'Observation' && visible(w, all, ask, d)).map((d) => d.patient));
        return expected(ask, (d) => d.type === 'Patient' && subjects.has(d.patient));
      })());
      check('Patient?_revinclude=Condition:subject', fhir.search(who, 'Patient', [['_revinclude', 'Condition:subject'], ['_count', '100']])
        .then(({ result }) => label(result.included)), (() => {
        const patients = new Set(all.filter((d) => d.type === 'Patient' && visible(w, all, ask, d)).map((d) => d.patient));
        return expected(ask, (d) => d.type === 'Condition' && patients.has(d.patient));
      })());
      check('Observation/_history', fhir.history(who, { resourceType: 'Observation', count: 100, offset: 0 }).then(({ rows }) => label(rows)),
        expected(ask, (d) => d.type === 'Observation'));
      const target = data.find((d) => d.type === 'Patient' && d.patient === probe.patient)!;
      const within = linked(w, probe.patient);
      check(`$everything ${probe.patient}`, fhir.everything(who, ids.get(target.name)!, 1000, 0).then(({ rows }) => label(rows), (e) => {
        if (e instanceof FhirError && e.status === 404) return ['(404)'];
        throw e;
      }), visible(w, all, ask, target) ? expected(ask, (d) => within.includes(d.patient)) : ['(404)']);
      try {
        await Promise.all(checks);
      } finally {
        await leave(written);
      }
    }), { numRuns: WORLDS });
    // Both answers occur often: the worlds are not trivially all-hidden or all-shared.
    expect(seen.permitted).toBeGreaterThan(seen.denied / 10);
    expect(seen.denied).toBeGreaterThan(seen.permitted / 10);
  }, 1_800_000);

  it('the HTTP API answers like the model too', async () => {
    await fc.assert(fc.asyncProperty(world, probes, async (w, probe) => {
      const { consentData, written } = await enter(w);
      const all = [...data, ...consentData];
      try {
        for (const ask of probe.askers) {
          const headers: Record<string, string> = { 'x-purpose-of-use': ask.purpose, ...(ask.breakGlass ? { 'x-break-glass-reason': encodeURIComponent(REASON) } : {}) };
          for (const type of TYPES) {
            const res = await http[ask.org].get(`${type}?_count=100&_total=accurate`, headers);
            const got = label((res.body.entry ?? []).map((e: any) => e.resource));
            const want = all.filter((d) => d.type === type && visible(w, all, ask, d)).map((d) => d.name).sort();
            expect(got, `${ask.org}/${ask.purpose} ${type}?`).toEqual(want);
            expect(res.body.total).toBe(want.length);
          }
          for (const n of probe.reads) {
            const d = all[n % all.length];
            const res = await http[ask.org].get(`${d.type}/${ids.get(d.name)}`, headers);
            expect(res.status, `${ask.org}/${ask.purpose} read ${d.name}`).toBe(visible(w, all, ask, d) ? 200 : 404);
          }
        }
      } finally {
        await leave(written);
      }
    }), { numRuns: HTTP_WORLDS });
  }, 600_000);
});

const idOf = (location?: string) => String(location).split('/')[1];

function agreement(terms: { active: boolean; period: { start: string; end?: string } }) {
  return {
    resourceType: 'OrganizationAffiliation', id: 'pm-agreement', ...terms,
    organization: { reference: `Organization/${ORG.facility}` }, participatingOrganization: { reference: `Organization/${ORG.hospital}` },
    code: [{ coding: [{ system: 'http://renkei.jp/fhir/CodeSystem/affiliation-role', code: 'kyoryoku-iryokikan' }] }],
    specialty: [{ coding: [{ system: 'http://renkei.jp/fhir/CodeSystem/kyoryoku-requirement', code: 'consultation-24h' }] }],
    telecom: [{ system: 'phone', value: '03-0000-9999', use: 'work' }],
  };
}

/** The stored form of a datum of the universe. */
function resourceOf(d: Datum, patientId: string): Record<string, unknown> {
  const security = d.restricted ? { meta: { security: [RESTRICTED] } } : {};
  const date = `${d.year}-06-15`;
  const code = d.codes[0] && { coding: [CODE[d.codes[0]]] };
  switch (d.type) {
    case 'Patient':
      return { ...patient(`PM-${d.patient}`) };
    case 'MedicationRequest':
      return { ...medicationRequest(patientId, `PM-${d.name}`), medicationCodeableConcept: code, authoredOn: date, ...security };
    case 'Observation':
      return { ...bodyTemperature(patientId, 36.5, `${date}T08:00:00+09:00`), code, ...security };
    default:
      return { resourceType: 'Condition', subject: { reference: `Patient/${patientId}` }, code, recordedDate: date, ...security };
  }
}
