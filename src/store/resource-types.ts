/** The resource types the gateway holds. */
export const SUPPORTED_TYPES = [
  'Patient', 'Practitioner', 'PractitionerRole', 'Organization', 'OrganizationAffiliation', 'Encounter',
  'Condition', 'AllergyIntolerance', 'Observation', 'MedicationRequest', 'MedicationStatement', 'Medication',
  'CarePlan', 'Goal', 'CareTeam', 'Communication', 'CommunicationRequest', 'Consent', 'Composition',
  'DocumentReference', 'Binary', 'Provenance', 'AuditEvent', 'Subscription', 'Basic', 'Bundle',
] as const;

export type SupportedType = (typeof SUPPORTED_TYPES)[number];

const supported = new Set<string>(SUPPORTED_TYPES);
export const isSupportedType = (type: string): type is SupportedType => supported.has(type);

/**
 * Shared directory data (who is who), readable by every registered client. Everything else belongs to
 * the Organization that wrote it.
 */
export const DIRECTORY_TYPES: readonly string[] = ['Organization', 'OrganizationAffiliation', 'Practitioner', 'PractitionerRole', 'Medication', 'Basic'];
const directory = new Set(DIRECTORY_TYPES);
export const isDirectoryType = (type: string): boolean => directory.has(type);

/** Elements that place a resource in a patient's compartment, in order of preference. */
const PATIENT_ELEMENTS: Record<string, string[]> = {
  Encounter: ['subject'], Condition: ['subject'], AllergyIntolerance: ['patient'], Observation: ['subject'],
  MedicationRequest: ['subject'], MedicationStatement: ['subject'], CarePlan: ['subject'], Goal: ['subject'],
  CareTeam: ['subject'], Communication: ['subject'], CommunicationRequest: ['subject'], Consent: ['patient'],
  Composition: ['subject'], DocumentReference: ['subject'], Provenance: [], Basic: ['subject'], Bundle: [],
};

/** The Patient id whose compartment holds this resource, if any. */
export function patientOf(resource: { resourceType: string; id?: string } & Record<string, unknown>): string | undefined {
  if (resource.resourceType === 'Patient') return resource.id;
  for (const element of PATIENT_ELEMENTS[resource.resourceType] ?? []) {
    const ref = (resource[element] as { reference?: string } | undefined)?.reference;
    const match = ref && /(?:^|\/)Patient\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/.exec(ref);
    if (match) return match[1];
  }
  return undefined;
}
