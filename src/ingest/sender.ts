import type { Organization } from '@medplum/fhirtypes';
import type { Services } from '../services.js';
import { ADMIN_VIEWER } from '../store/access.js';

/**
 * Who sent a message, as the mappings need it: the sender's Organization and the identifiers it issues.
 * A clinic's patient ids live under `urn:oid:1.2.392.100495.20.3.51.1` + its 10-digit 医療機関コード and
 * its staff ids under `…41.1` + the code (JP Core); a care provider's resident ids under the gateway's
 * `NamingSystem/resident-id/<事業所番号>`. Only the numbers registered on the sender's Organization count
 * (never MSH-4, which any sender could set); an Organization registered without either falls back to the
 * gateway's per-Organization systems (never to an id someone else could claim).
 */

export const MEDICAL_INSTITUTION_NO = 'http://jpfhir.jp/fhir/core/IdSystem/insurance-medical-institution-no';
const MEDICAL_INSTITUTION_OID = 'urn:oid:1.2.392.100495.20.3.23';
export const CARE_PROVIDER_NO = 'http://renkei.jp/fhir/NamingSystem/care-provider-no';
export const PATIENT_ID_OID = 'urn:oid:1.2.392.100495.20.3.51.1';
export const STAFF_ID_OID = 'urn:oid:1.2.392.100495.20.3.41.1';
export const RESIDENT_ID_BASE = 'http://renkei.jp/fhir/NamingSystem/resident-id';
export const LOCAL_PATIENT_ID_BASE = 'http://renkei.jp/fhir/NamingSystem/local-patient-id';
export const LOCAL_STAFF_ID_BASE = 'http://renkei.jp/fhir/NamingSystem/local-staff-id';

export interface SenderFacts {
  organizationId: string;
  /** 医療機関コード, else 介護事業所番号, else the Organization id: prefixes the sender's identifiers. */
  code: string;
  medicalInstitutionNo?: string;
  careProviderNo?: string;
  patientIdSystem: string;
  practitionerIdSystem: string;
}

export function senderFactsOf(organizationId: string, organization?: Organization): SenderFacts {
  const ids = organization?.identifier ?? [];
  const find = (...systems: string[]) => ids.find((i) => i.system && systems.includes(i.system) && /^\d{10}$/.test(i.value ?? ''))?.value;
  const medical = find(MEDICAL_INSTITUTION_NO, MEDICAL_INSTITUTION_OID);
  const care = find(CARE_PROVIDER_NO);
  return {
    organizationId,
    code: medical ?? care ?? organizationId,
    ...(medical ? { medicalInstitutionNo: medical } : {}),
    ...(care ? { careProviderNo: care } : {}),
    patientIdSystem: medical ? `${PATIENT_ID_OID}${medical}` : care ? `${RESIDENT_ID_BASE}/${care}` : `${LOCAL_PATIENT_ID_BASE}/${organizationId}`,
    practitionerIdSystem: medical ? `${STAFF_ID_OID}${medical}` : `${LOCAL_STAFF_ID_BASE}/${organizationId}`,
  };
}

/** Reads the sender's Organization (directory data) and derives its facts. */
export async function loadSenderFacts(services: Services, organizationId: string): Promise<SenderFacts> {
  const stored = await services.repo.read('Organization', organizationId, ADMIN_VIEWER);
  const organization = stored && !stored.deleted && stored.json ? (JSON.parse(stored.json) as Organization) : undefined;
  return senderFactsOf(organizationId, organization);
}

export function senderVariables(sender: SenderFacts): Record<string, string> {
  return {
    'sender.organizationId': sender.organizationId,
    'sender.code': sender.code,
    'sender.patientIdSystem': sender.patientIdSystem,
    'sender.practitionerIdSystem': sender.practitionerIdSystem,
    'sender.careProviderNo': sender.careProviderNo ?? sender.code,
  };
}
