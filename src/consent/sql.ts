/**
 * The SQL of consent-based sharing, on a row of `resource` or `resource_version` under an alias. `org`
 * and `purpose` are placeholders already bound to the viewer's Organization and purpose of use.
 * The rule is written into each statement rather than called as a function, so that the planner joins
 * consent_grant through its index like any other table: a per-row function call costs several times
 * the lookup itself, and a search filters every candidate row before paging.
 */

export const AFFILIATION_ROLE = 'http://renkei.jp/fhir/CodeSystem/affiliation-role';
/** OrganizationAffiliation.code of a 協力医療機関 agreement. */
export const KYORYOKU_ROLE = 'kyoryoku-iryokikan';

/** The grant row `g` applies to this viewer (Organization), the row's type and the purpose of use, now. */
const applies = (g: string, alias: string, org: string, purpose: string) =>
  `${g}.grantee IN (${org}, '*') AND ${g}.resource_type IN (${alias}.resource_type, '*') AND ${g}.purpose IN (${purpose}, '*')
   AND (${g}.period_start IS NULL OR ${g}.period_start <= now()) AND (${g}.period_end IS NULL OR ${g}.period_end > now())`;

/** The row's data satisfies a conditional grant (dataPeriod, codes, labels); NULL for a past version. */
const contentMatches = (g: string, alias: string) =>
  `consent_content_matches(${g}, ${alias}.resource_type, ${alias}.id, ${alias}.version_id)`;

/** Grants of the row's owner about the row's patient. */
const ownersGrants = (g: string, alias: string) =>
  `consent_grant ${g} WHERE ${g}.patient_id = ${alias}.patient_id AND ${g}.owner = ${alias}.owner`;

/**
 * FROM/WHERE of the permits that open the row: a matching permit of an active Consent recorded by the
 * row's owner about the row's patient that no matching deny of the same Consent, at the same or a deeper
 * level, overrides. Nested provisions are exceptions; deny wins a tie; Consents are independent.
 */
const permits = (alias: string, org: string, purpose: string) =>
  `FROM ${ownersGrants('cg_p', alias)} AND cg_p.permit AND ${applies('cg_p', alias, org, purpose)}
     AND (NOT cg_p.conditional OR ${contentMatches('cg_p', alias)})
     AND NOT EXISTS (SELECT 1 FROM consent_grant cg_o
       WHERE cg_o.consent_id = cg_p.consent_id AND NOT cg_o.permit AND cg_o.depth >= cg_p.depth AND ${applies('cg_o', alias, org, purpose)}
         AND (NOT cg_o.conditional OR ${contentMatches('cg_o', alias)} IS NOT FALSE))`;

/** Grantees of every permit of the row's owner about the row's patient, whatever its scope: whom it may open the row to. */
export const permitGranteesSql = (alias: string) => `SELECT cg_g.grantee FROM ${ownersGrants('cg_g', alias)} AND cg_g.permit`;

/** True when an active Consent recorded by the row's owner opens the row to the viewer. */
export const consentPermitsSql = (alias: string, org: string, purpose: string) =>
  `EXISTS (SELECT 1 ${permits(alias, org, purpose)})`;

/** `'<consent id> <provision path>'` of the deepest permitting provision, or NULL. */
export const consentPermitSql = (alias: string, org: string, purpose: string) =>
  `(SELECT cg_p.consent_id || ' ' || cg_p.provision ${permits(alias, org, purpose)} ORDER BY cg_p.depth DESC, cg_p.consent_id LIMIT 1)`;

/** `'<consent id> <provision path>'` of the deepest matching deny, or NULL. */
export const consentDenySql = (alias: string, org: string, purpose: string) =>
  `(SELECT cg_d.consent_id || ' ' || cg_d.provision FROM ${ownersGrants('cg_d', alias)} AND NOT cg_d.permit
     AND ${applies('cg_d', alias, org, purpose)} AND (NOT cg_d.conditional OR ${contentMatches('cg_d', alias)} IS NOT FALSE)
   ORDER BY cg_d.depth DESC, cg_d.consent_id LIMIT 1)`;

/** The id of the active 協力医療機関 agreement opening the row to the viewer in an emergency, or NULL. */
export const agreementSql = (alias: string, org: string) => `kyoryoku_agreement(${alias}.owner, ${alias}.patient_id, ${org})`;
