import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Caller } from '../../src/fhir/caller.js';
import { FhirError } from '../../src/fhir/outcome.js';
import { FhirService } from '../../src/fhir/service.js';
import { adminClient, organizationClient, type FhirClient } from '../support/fhir-client.js';
import { bodyTemperature, consent, medicationRequest, patient, type ProvisionSpec } from '../support/resources.js';
import { stackName, startTestStack, type TestStack } from '../support/stack.js';

/**
 * Generated worlds (a clinic's patients and data, its Consents with nested provisions, periods and
 * purposes) against a reference model of the sharing rules written independently of the SQL: every
 * answer of the gateway must equal the model's, with no leak and no wrongful denial.
 */
const CLINIC = 'pb-clinic';
const VIEWERS = ['pb-tokuyo', 'pb-rouken'];
const PURPOSES = ['TREAT', 'HPAYMT'];
const TYPES = ['MedicationRequest', 'Observation', 'Condition'] as const;
const PERIODS = {
  none: undefined,
  current: { start: '2020-01-01', end: '2099-12-31' },
  past: { start: '2019-01-01', end: '2021-01-01' },
  future: { start: '2098-01-01' },
} as const;

interface ModelProvision {
  type: 'permit' | 'deny';
  actors?: string[];
  classes?: string[];
  purposes?: string[];
  period: keyof typeof PERIODS;
  children: ModelProvision[];
}
interface ModelConsent { patient: number; active: boolean; root: ModelProvision }
interface World { patients: number; consents: ModelConsent[] }

const subset = (values: readonly string[]) => fc.option(fc.subarray([...values], { minLength: 1 }), { nil: undefined });
const provision = (depth: number): fc.Arbitrary<ModelProvision> =>
  fc.record({
    type: fc.constantFrom('permit' as const, 'deny' as const),
    actors: subset(VIEWERS),
    classes: subset(TYPES),
    purposes: subset(PURPOSES),
    period: fc.constantFrom('none' as const, 'none' as const, 'current' as const, 'past' as const, 'future' as const),
    children: depth > 0 ? fc.array(provision(depth - 1), { maxLength: 2 }) : fc.constant([]),
  });
const world: fc.Arbitrary<World> = fc.integer({ min: 1, max: 2 }).chain((patients) =>
  fc.record({
    patients: fc.constant(patients),
    consents: fc.array(fc.record({ patient: fc.integer({ min: 0, max: patients - 1 }), active: fc.boolean(), root: provision(2) }), { maxLength: 3 }),
  }));

// ---- the reference model: a plain reading of the rules --------------------------------------------
const NOW = Date.now();
function inPeriod(p: keyof typeof PERIODS): boolean {
  const period = PERIODS[p] as { start?: string; end?: string } | undefined;
  if (!period) return true;
  if (period.start && Date.parse(`${period.start}T00:00:00+09:00`) > NOW) return false;
  return !(period.end && Date.parse(`${period.end}T00:00:00+09:00`) + 86_400_000 <= NOW);
}
interface Ask { viewer: string; purpose: string; type: string }
/** The decisions of the deepest provisions that match (nested provisions inherit what they leave out). */
function matching(node: ModelProvision, ask: Ask, depth: number, out: { depth: number; type: string }[], allowed = true): void {
  const ok = allowed && inPeriod(node.period)
    && (!node.actors || node.actors.includes(ask.viewer))
    && (!node.classes || node.classes.includes(ask.type))
    && (!node.purposes || node.purposes.includes(ask.purpose));
  if (!ok) return;
  out.push({ depth, type: node.type });
  for (const child of node.children) matching(child, ask, depth + 1, out);
}
function permits(c: ModelConsent, ask: Ask): boolean {
  if (!c.active) return false;
  const found: { depth: number; type: string }[] = [];
  matching(c.root, ask, 0, found);
  if (!found.length) return false;
  const deepest = Math.max(...found.map((f) => f.depth));
  return found.filter((f) => f.depth === deepest).every((f) => f.type === 'permit');
}
// ---------------------------------------------------------------------------------------------------

function specOf(p: ModelProvision): ProvisionSpec {
  return {
    type: p.type, actors: p.actors, classes: p.classes, purposes: p.purposes,
    period: PERIODS[p.period] as ProvisionSpec['period'], provision: p.children.length ? p.children.map(specOf) : undefined,
  };
}

function resourceOf(type: (typeof TYPES)[number], patientId: string, tag: string) {
  if (type === 'MedicationRequest') return medicationRequest(patientId, `PB-${tag}`);
  if (type === 'Observation') return bodyTemperature(patientId, 36.5, '2026-11-20T08:00:00+09:00');
  return { resourceType: 'Condition', subject: { reference: `Patient/${patientId}` }, code: { text: '認知症' } };
}

describe(`consent decisions against a reference model (${stackName})`, () => {
  let stack: TestStack;
  let fhir: FhirService;
  let http: Record<string, FhirClient>;
  const caller = (org: string, purpose = 'TREAT'): Caller => ({ admin: false, organizationId: org, clientId: `${org}-client`, purposeOfUse: purpose });
  let worldNo = 0;

  beforeAll(async () => {
    stack = await startTestStack();
    const { services } = stack.gateway;
    fhir = new FhirService(services.db, services.repo, services.audit);
    http = {};
    for (const org of [CLINIC, ...VIEWERS]) http[org] = await organizationClient(stack, org);
  });
  afterAll(() => stack?.stop());

  /** Builds a world through the service layer; returns its patients' ids and resources. */
  async function build(w: World) {
    const n = worldNo++;
    const clinic = caller(CLINIC);
    const patients: string[] = [];
    const resources: { type: string; id: string; patient: number }[] = [];
    for (let p = 0; p < w.patients; p++) {
      const pid = String((await fhir.create(clinic, patient(`PB-${n}-${p}`), 'Patient')).location).split('/')[1];
      patients.push(pid);
      await Promise.all(TYPES.map(async (type) => {
        const created = await fhir.create(clinic, resourceOf(type, pid, `${n}-${p}`), type);
        resources.push({ type, id: String(created.location).split('/')[1], patient: p });
      }));
    }
    await Promise.all(w.consents.map((c) =>
      fhir.create(clinic, consent(patients[c.patient], CLINIC, specOf(c.root), c.active ? 'active' : 'inactive'), 'Consent')));
    return { patients, resources };
  }

  const seen = { permitted: 0, denied: 0 };
  const expected = (w: World, viewer: string, purpose: string, type: string, p: number) => {
    const allowed = w.consents.some((c) => c.patient === p && permits(c, { viewer, purpose, type }));
    seen[allowed ? 'permitted' : 'denied']++;
    return allowed;
  };

  it('every read and search total equals the model (service layer)', async () => {
    await fc.assert(
      fc.asyncProperty(world, async (w) => {
        const { patients, resources } = await build(w);
        const checks: Promise<void>[] = [];
        for (const viewer of VIEWERS) {
          for (const purpose of PURPOSES) {
            const who = caller(viewer, purpose);
            for (const r of resources) {
              checks.push(fhir.read(who, r.type, r.id).then(() => true, (e) => {
                if (e instanceof FhirError && e.status === 404) return false;
                throw e;
              }).then((visible) => {
                expect(visible, `${viewer}/${purpose} read ${r.type}`).toBe(expected(w, viewer, purpose, r.type, r.patient));
              }));
            }
            for (const [p, pid] of patients.entries()) {
              for (const type of TYPES) {
                checks.push(fhir.search(who, type, [['patient', pid]]).then(({ result }) => {
                  expect(result.total, `${viewer}/${purpose} search ${type}`).toBe(expected(w, viewer, purpose, type, p) ? 1 : 0);
                }));
              }
            }
          }
        }
        await Promise.all(checks);
      }),
      { numRuns: Number(process.env.CONSENT_WORLDS ?? 1000) },
    );
    // Both answers occur often: the worlds are not trivially all-hidden or all-shared.
    expect(seen.permitted).toBeGreaterThan(seen.denied / 20);
    expect(seen.denied).toBeGreaterThan(seen.permitted / 20);
  }, 600_000);

  it('the HTTP API answers like the model too', async () => {
    await fc.assert(
      fc.asyncProperty(world, async (w) => {
        const { patients, resources } = await build(w);
        for (const viewer of VIEWERS) {
          for (const purpose of PURPOSES) {
            const headers = { 'x-purpose-of-use': purpose };
            for (const r of resources) {
              const res = await http[viewer].get(`${r.type}/${r.id}`, headers);
              expect(res.status).toBe(expected(w, viewer, purpose, r.type, r.patient) ? 200 : 404);
            }
            const everything = await http[viewer].get(`MedicationRequest?patient=${patients.join(',')}&_revinclude=Observation:subject&_count=50`, headers);
            const want = patients.filter((_, p) => expected(w, viewer, purpose, 'MedicationRequest', p)).length;
            expect(everything.body.total).toBe(want);
            for (const entry of everything.body.entry ?? []) {
              const p = patients.indexOf(entry.resource.subject.reference.split('/')[1]);
              expect(expected(w, viewer, purpose, entry.resource.resourceType, p), 'included').toBe(true);
            }
          }
        }
      }),
      { numRuns: 25 },
    );
    expect((await adminClient(stack).get('Consent?_summary=count')).status).toBe(200);
  }, 600_000);
});
