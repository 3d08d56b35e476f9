/**
 * A reference model of who may see what, written as a plain reading of the rules (DESIGN.md "Who may
 * see what", issue 4), independent of the gateway's SQL: the property test compares every answer of the
 * gateway with it. Also the fixed universe of data the generated worlds share, and the JSON of their
 * Consents.
 */

export const ORG = { clinic: 'pm-clinic', facility: 'pm-tokuyo', hospital: 'pm-hospital', stranger: 'pm-stranger' } as const;
export type OrgKey = keyof typeof ORG;
export const ORG_KEYS = Object.keys(ORG) as OrgKey[];
export const TYPES = ['Patient', 'MedicationRequest', 'Observation', 'Condition', 'Consent'] as const;
export type DataType = (typeof TYPES)[number];
export const PURPOSES = ['TREAT', 'HPAYMT', 'ETREAT'] as const;
export type Purpose = (typeof PURPOSES)[number];
export const PATIENTS = ['c0', 'c1', 'f0', 'f1'] as const;
export type PatientKey = (typeof PATIENTS)[number];
/** Who holds each Patient record: the clinic its patients, the facility its residents. */
export const PATIENT_OWNER: Record<PatientKey, OrgKey> = { c0: 'clinic', c1: 'clinic', f0: 'facility', f1: 'facility' };

export const CODE = {
  A: { system: 'http://medis.or.jp/CodeSystem/master-HOT9', code: '105271807' },
  B: { system: 'http://medis.or.jp/CodeSystem/master-HOT9', code: '100795402' },
  X: { system: 'http://loinc.org', code: '8310-5' },
  Y: { system: 'http://loinc.org', code: '29463-7' },
} as const;
export type CodeKey = keyof typeof CODE;
export const CODE_KEYS = Object.keys(CODE) as CodeKey[];
export const RESTRICTED = { system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R' };
export type Year = '2025' | '2026';

/** One stored resource, as the model sees it. */
export interface Datum {
  name: string;
  type: DataType;
  owner: OrgKey;
  patient: PatientKey;
  year?: Year;
  codes: CodeKey[];
  restricted: boolean;
}

/** The data every world shares: the clinic's and the facility's records, and a note of each about the other's patient. */
export function universe(): Datum[] {
  const data: Datum[] = PATIENTS.map((p) => ({ name: `Patient ${p}`, type: 'Patient', owner: PATIENT_OWNER[p], patient: p, codes: [], restricted: false }));
  const add = (owner: OrgKey, patient: PatientKey, type: DataType, code: CodeKey, year: Year, restricted = false) =>
    data.push({ name: `${owner} ${type} ${code} ${year}${restricted ? ' R' : ''} ${patient}`, type, owner, patient, year, codes: [code], restricted });
  for (const p of ['c0', 'c1'] as const) {
    add('clinic', p, 'MedicationRequest', 'A', '2025');
    add('clinic', p, 'MedicationRequest', 'B', '2026');
    add('clinic', p, 'Observation', 'X', '2025');
    add('clinic', p, 'Observation', 'Y', '2026', true);
    add('clinic', p, 'Condition', 'X', '2026', true);
  }
  add('clinic', 'f0', 'Observation', 'Y', '2026'); // makes the clinic a custodian of the resident f0
  add('facility', 'c1', 'Observation', 'X', '2026'); // the facility's note about the clinic's patient: no break-glass
  for (const p of ['f0', 'f1'] as const) {
    add('facility', p, 'Observation', 'X', '2026');
    add('facility', p, 'Observation', 'Y', '2025', true);
    add('facility', p, 'Condition', 'Y', '2025');
  }
  return data;
}

export const PERIODS = {
  none: undefined,
  current: { start: '2020-01-01', end: '2099-12-31' },
  past: { start: '2019-01-01', end: '2021-01-01' },
  future: { start: '2098-01-01' },
} as const;
export const DATA_PERIODS = { none: undefined, '2025': { start: '2025-01-01', end: '2025-12-31' }, '2026': { start: '2026-01-01', end: '2026-12-31' } } as const;

export interface ModelProvision {
  type: 'permit' | 'deny';
  actors?: OrgKey[];
  classes?: DataType[];
  purposes?: Purpose[];
  codes?: CodeKey[];
  restricted: boolean;
  period: keyof typeof PERIODS;
  dataPeriod: keyof typeof DATA_PERIODS;
  children: ModelProvision[];
}
export interface ModelConsent { recorder: OrgKey; patient: PatientKey; active: boolean; root: ModelProvision }
export type Agreement = 'none' | 'active' | 'inactive' | 'ended';
export interface World {
  consents: ModelConsent[];
  /** The facility linked its resident f0 to the clinic's c0 (and f1 to c1). */
  links: { f0: boolean; f1: boolean };
  agreement: Agreement;
}
export interface Asker { org: OrgKey; purpose: Purpose; breakGlass: boolean }

// ---- the rules ---------------------------------------------------------------------------------------

/** A Consent counts only when its recorder holds the Patient record or has written data about the patient. */
export function accepted(c: ModelConsent, data: Datum[]): boolean {
  return data.some((d) => d.owner === c.recorder && d.patient === c.patient);
}

const NOW = Date.now();
function inPeriod(p: keyof typeof PERIODS): boolean {
  const period = PERIODS[p] as { start?: string; end?: string } | undefined;
  if (!period) return true;
  if (period.start && Date.parse(`${period.start}T00:00:00+09:00`) > NOW) return false;
  return !(period.end && Date.parse(`${period.end}T00:00:00+09:00`) + 86_400_000 <= NOW);
}

/** Does this provision (its own elements only) cover the request and the datum? */
function covers(p: ModelProvision, ask: Asker, d: Datum): boolean {
  const dataPeriod = DATA_PERIODS[p.dataPeriod] as { start: string } | undefined;
  return inPeriod(p.period)
    && (!p.actors || p.actors.includes(ask.org))
    && (!p.classes || p.classes.includes(d.type))
    && (!p.purposes || p.purposes.includes(ask.purpose))
    && (!dataPeriod || d.year === dataPeriod.start.slice(0, 4))
    && (!p.codes || p.codes.some((c) => d.codes.includes(c)))
    && (!p.restricted || d.restricted);
}

/** The provisions that apply: a nested provision is an exception that only applies inside its parent. */
function applying(p: ModelProvision, ask: Asker, d: Datum, depth: number, out: { depth: number; type: string }[]): void {
  if (!covers(p, ask, d)) return;
  out.push({ depth, type: p.type });
  for (const child of p.children) applying(child, ask, d, depth + 1, out);
}

/** The deepest applying provisions decide; deny wins a tie; nothing applying means deny. */
function permits(c: ModelConsent, ask: Asker, d: Datum): boolean {
  const found: { depth: number; type: string }[] = [];
  applying(c.root, ask, d, 0, found);
  if (!found.length) return false;
  const deepest = Math.max(...found.map((f) => f.depth));
  return found.filter((f) => f.depth === deepest).every((f) => f.type === 'permit');
}

/** May the asker see the datum? Owner always; break-glass under an agreement; else some active Consent of the owner. */
export function visible(world: World, data: Datum[], ask: Asker, d: Datum): boolean {
  if (d.owner === ask.org) return true;
  if (ask.breakGlass && ask.purpose === 'ETREAT' && ask.org === 'hospital' && world.agreement === 'active'
      && d.owner === 'facility' && PATIENT_OWNER[d.patient] === 'facility') return true;
  return world.consents.some((c) => c.active && c.recorder === d.owner && c.patient === d.patient && accepted(c, data) && permits(c, ask, d));
}

/** A patient and the records linked to it, either way, one hop. */
export function linked(world: World, p: PatientKey): PatientKey[] {
  const pairs: [PatientKey, PatientKey][] = [];
  if (world.links.f0) pairs.push(['f0', 'c0']);
  if (world.links.f1) pairs.push(['f1', 'c1']);
  return [p, ...pairs.filter(([a, b]) => a === p || b === p).map(([a, b]) => (a === p ? b : a))];
}

// ---- JSON of the world's Consents -------------------------------------------------------------------

export function provisionJson(p: ModelProvision): Record<string, unknown> {
  return {
    type: p.type,
    ...(PERIODS[p.period] ? { period: PERIODS[p.period] } : {}),
    ...(DATA_PERIODS[p.dataPeriod] ? { dataPeriod: DATA_PERIODS[p.dataPeriod] } : {}),
    ...(p.actors ? { actor: p.actors.map((o) => ({
      role: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP' }] },
      reference: { reference: `Organization/${ORG[o]}` },
    })) } : {}),
    ...(p.purposes ? { purpose: p.purposes.map((code) => ({ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code })) } : {}),
    ...(p.classes ? { class: p.classes.map((code) => ({ system: 'http://hl7.org/fhir/resource-types', code })) } : {}),
    ...(p.codes ? { code: p.codes.map((c) => ({ coding: [CODE[c]] })) } : {}),
    ...(p.restricted ? { securityLabel: [RESTRICTED] } : {}),
    ...(p.children.length ? { provision: p.children.map(provisionJson) } : {}),
  };
}
