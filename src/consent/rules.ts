import type { Consent, ConsentProvision } from '@medplum/fhirtypes';
import { FhirError, type Issue } from '../fhir/outcome.js';
import type { Queryable } from '../store/db.js';
import { gatewayProfileFor, validateInStages } from '../validation/index.js';
import { grantsOf, MAX_GRANTS, PARTICIPATION_TYPE, RECIPIENT_ROLES, RESOURCE_TYPES } from './grants.js';

/**
 * What a Consent must be before the gateway acts on it: the gateway's Consent profile (patient,
 * patient-privacy scope, a policy, a root provision type, …); recorded by a custodian of the patient's
 * data (it holds the Patient record or has written data about the patient), naming itself as the
 * organization that records it; every actor an Organization the gateway knows, in a recipient role;
 * provisions the gateway can enforce. Anything else answers 422 with the element at fault.
 */
export async function assertConsentRules(db: Queryable, organizationId: string | undefined, consent: Consent, id = ''): Promise<void> {
  const profile = gatewayProfileFor('Consent')!;
  const issues: Issue[] = validateInStages(consent, { profiles: [profile] }).rules
    .filter((i) => i.severity === 'error' || i.severity === 'fatal')
    .map((i) => ({ code: i.code as Issue['code'], diagnostics: i.diagnostics, expression: i.expression }));
  if (!organizationId) {
    issues.push(rule('Consent', 'A Consent is recorded by the organization that holds the data, not by the administrator / 同意はデータ保有機関が登録します'));
    throw new FhirError(422, issues);
  }
  const patientId = /^Patient\/([A-Za-z0-9\-.]{1,64})$/.exec(consent.patient?.reference ?? '')?.[1];
  if (consent.patient && !(patientId && (await isCustodian(db, organizationId, patientId)))) {
    issues.push(rule('Consent.patient',
      'Consent.patient must be a patient whose data your organization holds / 自機関がデータを保有する患者を指定してください'));
  }
  if (consent.organization?.length && !consent.organization.some((o) => o.reference === `Organization/${organizationId}`)) {
    issues.push(rule('Consent.organization', `Consent.organization must name Organization/${organizationId}, the recorder / 記録機関が一致しません`));
  }
  const provisions = flatten(consent.provision);
  issues.push(...provisions.flatMap(enforceability), ...(await unresolvedActors(db, provisions)));
  if (!issues.length && grantsOf(consent, id, organizationId).length > MAX_GRANTS) {
    issues.push(rule('Consent.provision', `The provisions combine into more than ${MAX_GRANTS} rules; split the Consent / 同意の条件が複雑すぎます`));
  }
  if (issues.length) throw new FhirError(422, issues);
}

/** A custodian holds the Patient record or has written (still current) data about the patient. */
async function isCustodian(db: Queryable, organizationId: string, patientId: string): Promise<boolean> {
  const { rows } = await db.query(
    `SELECT 1 FROM resource WHERE owner = $2 AND NOT deleted
       AND ((resource_type = 'Patient' AND id = $1) OR patient_id = $1) LIMIT 1`,
    [patientId, organizationId],
  );
  return rows.length > 0;
}

interface Located { provision: ConsentProvision; path: string }

function flatten(root: ConsentProvision | undefined, path = 'Consent.provision'): Located[] {
  if (!root) return [];
  return [{ provision: root, path }, ...(root.provision ?? []).flatMap((child, i) => flatten(child, `${path}.provision[${i}]`))];
}

/** Elements whose meaning the gateway enforces as stated, or refuses rather than half-enforce. */
function enforceability({ provision, path }: Located): Issue[] {
  const issues: Issue[] = [];
  if (provision.data?.length) {
    issues.push(rule(`${path}.data`, 'Provisions about specific resources (data) are not supported: use class, code, dataPeriod or securityLabel / dataは指定できません'));
  }
  provision.class?.forEach((c, i) => {
    if (c.system && c.system !== RESOURCE_TYPES) {
      issues.push(rule(`${path}.class[${i}]`, `Consent classes are resource types (${RESOURCE_TYPES}) / classにはリソース型を指定してください`));
    }
  });
  provision.actor?.forEach((a, i) => {
    if (!a.role?.coding?.some((c) => c.system === PARTICIPATION_TYPE && RECIPIENT_ROLES.includes(c.code ?? ''))) {
      issues.push(rule(`${path}.actor[${i}].role`,
        `An actor receives data: role ${RECIPIENT_ROLES.join(' or ')} of ${PARTICIPATION_TYPE} / 受領者(IRCP)として指定してください`));
    }
  });
  provision.code?.forEach((c, i) => {
    if (!c.coding?.some((x) => x.code)) issues.push(rule(`${path}.code[${i}]`, 'A provision code needs a coding with a code / codeにはコードを指定してください'));
  });
  return issues;
}

/** Provision actors (at any depth) that are not Organizations known to the gateway. */
async function unresolvedActors(db: Queryable, provisions: Located[]): Promise<Issue[]> {
  const actors = provisions.flatMap(({ provision, path }) =>
    (provision.actor ?? []).map((a, i) => ({ path: `${path}.actor[${i}].reference`, reference: a.reference?.reference })));
  const ids = actors.map((a) => /^Organization\/([A-Za-z0-9\-.]{1,64})$/.exec(a.reference ?? '')?.[1]);
  const wanted = ids.filter((id): id is string => Boolean(id));
  const { rows } = wanted.length
    ? await db.query<{ id: string }>("SELECT id FROM resource WHERE resource_type = 'Organization' AND id = ANY($1) AND NOT deleted", [wanted])
    : { rows: [] };
  const known = new Set(rows.map((r) => r.id));
  return actors.flatMap((a, i) => (ids[i] && known.has(ids[i]!) ? [] : [rule(a.path,
    `Consent actors must be Organizations known to the gateway: ${a.reference ?? '(none)'} / 同意の対象機関が見つかりません`)]));
}

const rule = (expression: string, diagnostics: string): Issue => ({ code: 'business-rule', expression: [expression], diagnostics });
