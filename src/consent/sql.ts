/**
 * The SQL of consent-based sharing, on a row of `resource` or `resource_version` under an alias. `org`
 * and `purpose` are placeholders already bound to the viewer's Organization and purpose of use. The
 * decisions themselves are PL/pgSQL functions (migration 005): each is an indexed lookup in
 * consent_grant per row, and a query carries a short call instead of the whole rule, which keeps
 * planning cheap; the functions' plans are cached per session.
 */

export const AFFILIATION_ROLE = 'http://renkei.jp/fhir/CodeSystem/affiliation-role';
/** OrganizationAffiliation.code of a 協力医療機関 agreement. */
export const KYORYOKU_ROLE = 'kyoryoku-iryokikan';

const rowArgs = (alias: string) => `${alias}.owner, ${alias}.patient_id, ${alias}.resource_type, ${alias}.id, ${alias}.version_id`;

/** `'<consent id> <provision path>'` of the deepest permitting provision, or NULL. */
export const consentPermitSql = (alias: string, org: string, purpose: string) =>
  `consent_permit(${rowArgs(alias)}, ${org}, ${purpose})`;

/** `'<consent id> <provision path>'` of the deepest matching deny, or NULL. */
export const consentDenySql = (alias: string, org: string, purpose: string) =>
  `consent_deny(${rowArgs(alias)}, ${org}, ${purpose})`;

/** The id of the active 協力医療機関 agreement opening the row to the viewer in an emergency, or NULL. */
export const agreementSql = (alias: string, org: string) => `kyoryoku_agreement(${alias}.owner, ${alias}.patient_id, ${org})`;
