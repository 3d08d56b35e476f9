import type { OrganizationAffiliation } from '@medplum/fhirtypes';
import { FhirError, type Issue } from '../fhir/outcome.js';
import type { Queryable } from '../store/db.js';
import { AFFILIATION_ROLE, KYORYOKU_ROLE } from './sql.js';

export const REQUIREMENT_SYSTEM = 'http://renkei.jp/fhir/CodeSystem/kyoryoku-requirement';
export const REQUIREMENTS = ['consultation-24h', 'visit-24h', 'admission'];
const ORGANIZATION_KIND = 'http://renkei.jp/fhir/CodeSystem/organization-kind';

/**
 * An OrganizationAffiliation: both parties are Organizations the gateway knows, requirements are the
 * three the regulation names, and admission (入院受入れ) can only be promised by a hospital
 * (organization-kind `hospital`). A 協力医療機関 agreement (code kyoryoku-iryokikan, the one that
 * allows break-glass) also states what it covers: at least one requirement, its start, and a phone
 * number that answers at night and on holidays.
 */
export async function assertAgreementRules(db: Queryable, agreement: OrganizationAffiliation): Promise<void> {
  const issues: Issue[] = [];
  const facility = orgId(agreement.organization?.reference);
  const partner = orgId(agreement.participatingOrganization?.reference);
  if (!facility) issues.push(rule('OrganizationAffiliation.organization', 'The facility (organization) is required / 施設を指定してください'));
  if (!partner) issues.push(rule('OrganizationAffiliation.participatingOrganization', 'The 協力医療機関 (participatingOrganization) is required'));
  const kinds = await organizationKinds(db, [facility, partner].filter((x): x is string => Boolean(x)));
  if (facility && !kinds.has(facility)) issues.push(rule('OrganizationAffiliation.organization', `Organization/${facility} is not known`));
  if (partner && !kinds.has(partner)) issues.push(rule('OrganizationAffiliation.participatingOrganization', `Organization/${partner} is not known`));
  (agreement.specialty ?? []).forEach((s, i) => s.coding?.forEach((c) => {
    if (c.system !== REQUIREMENT_SYSTEM) return;
    if (!REQUIREMENTS.includes(c.code ?? '')) {
      issues.push(rule(`OrganizationAffiliation.specialty[${i}]`, `Unknown requirement ${c.code}; use ${REQUIREMENTS.join(', ')}`));
    } else if (c.code === 'admission' && partner && kinds.has(partner) && !kinds.get(partner)!.includes('hospital')) {
      issues.push(rule(`OrganizationAffiliation.specialty[${i}]`,
        'Only a hospital (organization-kind hospital) can accept admissions / 入院受入れは病院のみ'));
    }
  }));
  if (agreement.code?.some((c) => c.coding?.some((x) => x.system === AFFILIATION_ROLE && x.code === KYORYOKU_ROLE))) {
    if (!agreement.specialty?.some((s) => s.coding?.some((c) => c.system === REQUIREMENT_SYSTEM && REQUIREMENTS.includes(c.code ?? '')))) {
      issues.push(rule('OrganizationAffiliation.specialty', `A 協力医療機関 agreement states its requirements (${REQUIREMENTS.join(', ')}) / 協力医療機関の要件を指定してください`));
    }
    if (!agreement.period?.start) issues.push(rule('OrganizationAffiliation.period.start', 'A 協力医療機関 agreement states when it starts / 協定の開始日を指定してください'));
    if (!agreement.telecom?.some((t) => t.system === 'phone' && t.value)) {
      issues.push(rule('OrganizationAffiliation.telecom', 'A 協力医療機関 agreement gives a phone number for nights and holidays / 夜間・休日の連絡先を指定してください'));
    }
  }
  if (issues.length) throw new FhirError(422, issues);
}

const rule = (expression: string, diagnostics: string): Issue => ({ code: 'business-rule', expression: [expression], diagnostics });
const orgId = (reference?: string) => /^Organization\/([A-Za-z0-9\-.]{1,64})$/.exec(reference ?? '')?.[1];

async function organizationKinds(db: Queryable, ids: string[]): Promise<Map<string, string[]>> {
  if (!ids.length) return new Map();
  const { rows } = await db.query<{ id: string; kinds: string[] | null }>(
    `SELECT r.id, (SELECT array_agg(c->>'code') FROM jsonb_array_elements(r.content->'type') t,
        jsonb_array_elements(t->'coding') c WHERE c->>'system' = $2) AS kinds
     FROM resource r WHERE r.resource_type = 'Organization' AND r.id = ANY($1) AND NOT r.deleted`,
    [ids, ORGANIZATION_KIND],
  );
  return new Map(rows.map((r) => [r.id, r.kinds ?? []]));
}
