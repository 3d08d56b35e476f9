import type { Consent } from '@medplum/fhirtypes';
import { FhirError, type Issue } from '../fhir/outcome.js';
import type { Queryable } from '../store/db.js';
import { gatewayProfileFor, validateInStages } from '../validation/index.js';

/**
 * What a Consent must be before the gateway acts on it: the gateway's Consent profile (patient,
 * patient-privacy scope, a policy, a root provision type, …); recorded by the organization that holds
 * the patient (a custodian: the Patient is its own data); naming that organization as the one that
 * records it; and every actor an Organization the gateway knows. Anything else answers 422.
 */
export async function assertConsentRules(db: Queryable, organizationId: string | undefined, consent: Consent): Promise<void> {
  const profile = gatewayProfileFor('Consent')!;
  const issues: Issue[] = validateInStages(consent, { profiles: [profile] }).rules
    .filter((i) => i.severity === 'error' || i.severity === 'fatal')
    .map((i) => ({ code: i.code as Issue['code'], diagnostics: i.diagnostics, expression: i.expression }));
  if (!organizationId) {
    issues.push({ code: 'business-rule', diagnostics: 'A Consent is recorded by the organization that holds the data, not by the administrator / 同意はデータ保有機関が登録します' });
    throw new FhirError(422, issues);
  }
  const patientId = /^Patient\/([A-Za-z0-9\-.]{1,64})$/.exec(consent.patient?.reference ?? '')?.[1];
  if (consent.patient && !(patientId && (await ownsPatient(db, organizationId, patientId)))) {
    issues.push({
      code: 'business-rule', expression: ['Consent.patient'],
      diagnostics: 'Consent.patient must be a Patient your organization holds / 自機関の患者を指定してください',
    });
  }
  if (consent.organization?.length && !consent.organization.some((o) => o.reference === `Organization/${organizationId}`)) {
    issues.push({
      code: 'business-rule', expression: ['Consent.organization'],
      diagnostics: `Consent.organization must name Organization/${organizationId}, the recorder / 記録機関が一致しません`,
    });
  }
  issues.push(...(await unresolvedActors(db, consent)));
  if (issues.length) throw new FhirError(422, issues);
}

async function ownsPatient(db: Queryable, organizationId: string, patientId: string): Promise<boolean> {
  const { rows } = await db.query(
    "SELECT 1 FROM resource WHERE resource_type = 'Patient' AND id = $1 AND owner = $2 AND NOT deleted", [patientId, organizationId]);
  return rows.length > 0;
}

/** Provision actors (at any depth) that are not Organizations known to the gateway. */
async function unresolvedActors(db: Queryable, consent: Consent): Promise<Issue[]> {
  const actors: { path: string; reference?: string }[] = [];
  const visit = (provision: Consent['provision'], path: string) => {
    provision?.actor?.forEach((a, i) => actors.push({ path: `${path}.actor[${i}].reference`, reference: a.reference?.reference }));
    provision?.provision?.forEach((child, i) => visit(child, `${path}.provision[${i}]`));
  };
  visit(consent.provision, 'Consent.provision');
  const ids = actors.map((a) => /^Organization\/([A-Za-z0-9\-.]{1,64})$/.exec(a.reference ?? '')?.[1]);
  const wanted = ids.filter((id): id is string => Boolean(id));
  const { rows } = wanted.length
    ? await db.query<{ id: string }>("SELECT id FROM resource WHERE resource_type = 'Organization' AND id = ANY($1) AND NOT deleted", [wanted])
    : { rows: [] };
  const known = new Set(rows.map((r) => r.id));
  return actors.flatMap((a, i) => (ids[i] && known.has(ids[i]!) ? [] : [{
    code: 'business-rule' as const, expression: [a.path],
    diagnostics: `Consent actors must be Organizations known to the gateway: ${a.reference ?? '(none)'} / 同意の対象機関が見つかりません`,
  }]));
}
