import type { MedicationRequest, Observation, Patient } from '@medplum/fhirtypes';

export const PATIENT_ID_SYSTEM = 'urn:oid:1.2.392.100495.20.3.51.11310000099';
const REPRESENTATION = 'http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation';

export function patient(localId: string, overrides: Partial<Patient> = {}): Patient {
  return {
    resourceType: 'Patient',
    identifier: [{ system: PATIENT_ID_SYSTEM, value: localId }],
    name: [
      { extension: [{ url: REPRESENTATION, valueCode: 'IDE' }], use: 'official', family: '山田', given: ['太郎'], text: '山田 太郎' },
      { extension: [{ url: REPRESENTATION, valueCode: 'SYL' }], use: 'official', family: 'ヤマダ', given: ['タロウ'], text: 'ヤマダ タロウ' },
    ],
    gender: 'male',
    birthDate: '1935-07-10',
    address: [{ text: '埼玉県さいたま市浦和区高砂三丁目１番地', postalCode: '3300063', country: 'JP' }],
    telecom: [{ system: 'phone', value: '048-000-1111', use: 'home' }],
    ...overrides,
  };
}

export function bodyTemperature(patientId: string, value: number, effective: string): Observation {
  return {
    resourceType: 'Observation',
    status: 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] }],
    code: { coding: [{ system: 'http://loinc.org', code: '8310-5', display: 'Body temperature' }], text: '体温' },
    subject: { reference: `Patient/${patientId}` },
    effectiveDateTime: effective,
    valueQuantity: { value, unit: 'Cel', system: 'http://unitsofmeasure.org', code: 'Cel' },
  };
}

export function medicationRequest(patientId: string, order: string): MedicationRequest {
  return {
    resourceType: 'MedicationRequest',
    identifier: [{ system: 'http://jpfhir.jp/fhir/core/mhlw/IdSystem/Medication-RPGroupNumber', value: order }],
    status: 'active',
    intent: 'order',
    medicationCodeableConcept: {
      coding: [{ system: 'http://medis.or.jp/CodeSystem/master-HOT9', code: '105271807', display: '酸化マグネシウム錠３３０ｍｇ' }],
      text: '酸化マグネシウム錠３３０ｍｇ',
    },
    subject: { reference: `Patient/${patientId}` },
    authoredOn: '2026-11-05T10:15:00+09:00',
  };
}

export interface ProvisionSpec {
  type?: 'permit' | 'deny';
  actors?: string[];
  classes?: string[];
  purposes?: string[];
  period?: { start?: string; end?: string };
  provision?: ProvisionSpec[];
}

function provisionOf(spec: ProvisionSpec): Record<string, unknown> {
  return {
    type: spec.type ?? 'permit',
    ...(spec.period ? { period: spec.period } : {}),
    ...(spec.actors ? {
      actor: spec.actors.map((org) => ({
        role: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP' }] },
        reference: { reference: `Organization/${org}` },
      })),
    } : {}),
    ...(spec.purposes ? { purpose: spec.purposes.map((code) => ({ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code })) } : {}),
    ...(spec.classes ? { class: spec.classes.map((code) => ({ system: 'http://hl7.org/fhir/resource-types', code })) } : {}),
    ...(spec.provision ? { provision: spec.provision.map(provisionOf) } : {}),
  };
}

/** A Consent as a clinic records it: patient-privacy scope, an opt-in policy, the given provision tree. */
export function consent(patientId: string, recorder: string, provision: ProvisionSpec, status = 'active'): Record<string, unknown> {
  return {
    resourceType: 'Consent',
    status,
    scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
    category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }],
    patient: { reference: `Patient/${patientId}` },
    dateTime: '2026-11-01T10:00:00+09:00',
    organization: [{ reference: `Organization/${recorder}` }],
    policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTIN' }] },
    provision: provisionOf(provision),
  };
}
