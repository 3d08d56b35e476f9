import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Change } from '../../src/exchange/deliveries.js';
import { subscribersOf } from '../../src/subscriptions/matcher.js';
import { SpecCache } from '../../src/subscriptions/state.js';
import { adminClient, organizationClient, type FhirClient } from '../support/fhir-client.js';
import { bodyTemperature, consent, patient } from '../support/resources.js';
import { stackName, startTestStack, type TestStack } from '../support/stack.js';

const OTHERS = 40;
const WIDE = { start: '2020-01-01', end: '2099-12-31' };

/**
 * Matching asks only the subscriptions of Organizations that may see the changed resource (its owner and
 * the grantees of its owner's Consents about the patient) to run their criteria: here many Organizations
 * subscribe to the same type, and the answer must be exactly the subscribers whose view allows it.
 */
describe(`subscribers of a change among many Organizations (${stackName})`, () => {
  let stack: TestStack;
  let clinic: FhirClient;

  beforeAll(async () => {
    stack = await startTestStack({ RENKEI_RELAY: 'off', RENKEI_WORKERS: 'off' });
    clinic = await organizationClient(stack, 'cand-clinic');
    await organizationClient(stack, 'cand-tokuyo');
    await subscribeEveryOrganization('Observation', 'Observation?category=vital-signs');
    await subscribeEveryOrganization('Practitioner', 'Practitioner');
  });
  afterAll(() => stack?.stop());

  const ORGS = ['cand-clinic', 'cand-tokuyo', ...Array.from({ length: OTHERS }, (_, i) => `cand-other-${i}`)];

  /** Running state as the lifecycle writes it once active; the Subscriptions as their clients wrote them. */
  async function subscribeEveryOrganization(type: string, criteria: string): Promise<void> {
    await stack.gateway.services.db.query(
      `WITH orgs AS (SELECT org, 'cand-' || lower($2) || '-' || org AS id FROM unnest($1::text[]) AS org),
         subs AS (INSERT INTO resource (resource_type, id, version_id, last_updated, owner, content)
           SELECT 'Subscription', id, 1, now(), org, jsonb_build_object('resourceType', 'Subscription', 'id', id, 'status', 'active',
             'reason', 'changes', 'criteria', $3::text,
             'channel', jsonb_build_object('type', 'rest-hook', 'endpoint', 'https://' || org || '.example.jp/hook', 'payload', 'application/fhir+json'))
           FROM orgs)
       INSERT INTO subscription_state (id, owner, version_id, kind, status, resource_types, purpose)
       SELECT id, org, 1, 'criteria', 'active', ARRAY[$2::text], 'TREAT' FROM orgs`, [ORGS, type, criteria]);
  }

  const ownersOf = async (change: Change) =>
    (await subscribersOf(stack.gateway.services.db, new SpecCache(), change)).map((s) => s.owner!).sort();

  async function subscribersOfObservation(patientNo: string, provision?: Parameters<typeof consent>[2]): Promise<string[]> {
    const patientId = (await clinic.post('Patient', patient(patientNo))).body.id as string;
    if (provision) expect((await clinic.post('Consent', consent(patientId, 'cand-clinic', provision))).status).toBe(201);
    const observation = (await clinic.post('Observation', bodyTemperature(patientId, 36.8, '2026-11-27T09:00:00+09:00'))).body;
    const change: Change = {
      seq: 1, resourceType: 'Observation', id: observation.id, versionId: 1, action: 'create', owner: 'cand-clinic', patientId, committedAt: Date.now(),
    };
    return ownersOf(change);
  }

  it('asks the owner alone when no Consent opens the patient', async () => {
    expect(await subscribersOfObservation('CAND-1')).toEqual(['cand-clinic']);
  });

  it('adds the grantee of a Consent, and only for what the Consent covers', async () => {
    expect(await subscribersOfObservation('CAND-2', { actors: ['cand-tokuyo'], classes: ['Observation'], period: WIDE })).toEqual(['cand-clinic', 'cand-tokuyo']);
    // A permit for another type makes the grantee a candidate; its criteria, seen as it sees, still decide.
    expect(await subscribersOfObservation('CAND-3', { actors: ['cand-tokuyo'], classes: ['MedicationRequest'], period: WIDE })).toEqual(['cand-clinic']);
  });

  it('asks every subscriber when a Consent opens the patient to any recipient', async () => {
    const all = await subscribersOfObservation('CAND-4', { classes: ['Observation'], period: WIDE });
    expect(all).toHaveLength(OTHERS + 2);
  });

  it('asks every subscriber about directory data, which every Organization sees', async () => {
    const practitioner = await adminClient(stack).post('Practitioner', { resourceType: 'Practitioner', name: [{ family: '候補', given: ['太郎'] }] });
    expect(practitioner.status).toBe(201);
    const change: Change = {
      seq: 2, resourceType: 'Practitioner', id: practitioner.body.id, versionId: 1, action: 'create', owner: null, patientId: null, committedAt: Date.now(),
    };
    expect(await ownersOf(change)).toEqual([...ORGS].sort());
  });
});
