import type { OrganizationAffiliation } from '@medplum/fhirtypes';
import { AFFILIATION_ROLE, KYORYOKU_ROLE } from '../consent/sql.js';
import type { Queryable } from '../store/db.js';
import { ADMIN_VIEWER } from '../store/access.js';
import { executeSearch } from '../store/search/execute.js';
import { parseSearch } from '../store/search/request.js';

/**
 * A care facility's 協力医療機関: the participatingOrganization of each active OrganizationAffiliation
 * (role kyoryoku-iryokikan, period current) whose organization is the facility. Agreements are directory
 * data, so this reads them directly rather than as a search on the facility's behalf.
 */
export async function kyoryokuPartners(db: Queryable, facilityId: string, now = new Date()): Promise<{ reference: string; display?: string }[]> {
  const request = parseSearch('OrganizationAffiliation', [
    ['primary-organization', `Organization/${facilityId}`],
    ['role', `${AFFILIATION_ROLE}|${KYORYOKU_ROLE}`],
    ['_count', '50'],
  ]);
  const { matches } = await executeSearch(db, request, ADMIN_VIEWER);
  const partners = new Map<string, { reference: string; display?: string }>();
  for (const match of matches) {
    const agreement = JSON.parse(match.json ?? '{}') as OrganizationAffiliation;
    if (agreement.active === false) continue;
    const { start, end } = agreement.period ?? {};
    if ((start && new Date(start) > now) || (end && new Date(end) <= now)) continue;
    const reference = agreement.participatingOrganization?.reference;
    if (reference && /^Organization\/[A-Za-z0-9\-.]{1,64}$/.test(reference)) {
      partners.set(reference, { reference, ...(agreement.participatingOrganization?.display ? { display: agreement.participatingOrganization.display } : {}) });
    }
  }
  return [...partners.values()].sort((a, b) => a.reference.localeCompare(b.reference));
}
