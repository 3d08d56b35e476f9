import type { CapabilityStatement, CapabilityStatementRestResource } from '@medplum/fhirtypes';
import { SUPPORTED_TYPES } from '../store/resource-types.js';
import { paramsFor } from '../store/search/parameters.js';
import { knownProfiles } from '../validation/index.js';
import { describeSubscriptions, SUBSCRIPTION_CAPABILITY } from '../subscriptions/capability.js';

const VERSION = '0.1.0';

/** AuditEvents are append-only: they can be recorded and read, never changed. */
const APPEND_ONLY = new Set(['AuditEvent']);

const AUDIT_SEARCH: CapabilityStatementRestResource['searchParam'] = [
  { name: 'date', type: 'date' }, { name: 'patient', type: 'reference' }, { name: 'entity', type: 'reference' },
  { name: 'agent', type: 'reference' }, { name: 'subtype', type: 'token' }, { name: 'outcome', type: 'token' },
  { name: 'purpose', type: 'token' },
];

let cached: { base: string; statement: CapabilityStatement } | undefined;

/** The CapabilityStatement, generated from the types, parameters and profiles this gateway really serves. */
export function capabilityStatement(base: string): CapabilityStatement {
  if (cached?.base === base) return cached.statement;
  const statement: CapabilityStatement = {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: new Date().toISOString().slice(0, 10),
    publisher: 'renkei',
    kind: 'instance',
    software: { name: 'renkei', version: VERSION },
    implementation: { description: 'renkei 医療・介護連携 FHIR gateway', url: base },
    instantiates: [SUBSCRIPTION_CAPABILITY.instantiates],
    implementationGuide: [SUBSCRIPTION_CAPABILITY.implementationGuide],
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'json'],
    patchFormat: [],
    rest: [
      {
        mode: 'server',
        security: {
          cors: false,
          service: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' }] }],
          extension: [
            {
              url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
              extension: [{ url: 'token', valueUri: `${base.replace(/\/fhir$/, '')}/oauth2/token` }],
            },
          ],
          description: 'SMART Backend Services (client_credentials with private_key_jwt or client_secret_basic)',
        },
        resource: SUPPORTED_TYPES.map(resourceCapability).map(describeSubscriptions),
        interaction: [{ code: 'transaction' }, { code: 'batch' }, { code: 'history-system' }],
        searchParam: [
          { name: '_count', type: 'number' }, { name: '_offset', type: 'number' }, { name: '_sort', type: 'string' },
          { name: '_total', type: 'token' }, { name: '_summary', type: 'token' }, { name: '_elements', type: 'string' },
        ],
      },
    ],
  };
  cached = { base, statement };
  return statement;
}

function resourceCapability(type: string): CapabilityStatementRestResource {
  const restType = type as CapabilityStatementRestResource['type'];
  const params = [...paramsFor(type).values()];
  const references = params.filter((p) => p.type === 'reference').map((p) => `${type}:${p.code}`);
  const interactions = APPEND_ONLY.has(type)
    ? ['read', 'create', 'search-type']
    : ['read', 'vread', 'update', 'delete', 'history-instance', 'history-type', 'create', 'search-type'];
  return {
    type: restType,
    supportedProfile: knownProfiles().filter((p: string) => p.includes(`/${profileStem(type)}`)),
    interaction: interactions.map((code) => ({ code: code as 'read' })),
    versioning: APPEND_ONLY.has(type) ? 'no-version' : 'versioned-update',
    readHistory: !APPEND_ONLY.has(type),
    updateCreate: !APPEND_ONLY.has(type),
    conditionalCreate: !APPEND_ONLY.has(type),
    conditionalRead: 'not-supported',
    conditionalUpdate: !APPEND_ONLY.has(type),
    conditionalDelete: APPEND_ONLY.has(type) ? 'not-supported' : 'single',
    searchInclude: APPEND_ONLY.has(type) ? [] : [...references, `${type}:*`],
    searchRevInclude: [],
    searchParam: APPEND_ONLY.has(type) ? AUDIT_SEARCH : [
      { name: '_id', type: 'token' },
      { name: '_lastUpdated', type: 'date' },
      ...params.map((p) => ({ name: p.code, type: p.type, documentation: p.expression })),
    ],
    operation: [
      { name: 'validate', definition: 'http://hl7.org/fhir/OperationDefinition/Resource-validate' },
      ...(type === 'Patient'
        ? [{ name: 'everything', definition: 'http://hl7.org/fhir/OperationDefinition/Patient-everything' },
          { name: 'access', definition: 'http://renkei.jp/fhir/OperationDefinition/Patient-access',
            documentation: 'GET ?actor=Organization/{id}[&purpose=][&resource=Type/id]: whether an organization may see this patient\'s data now, and which Consent provision decided' },
          { name: 'link', definition: 'http://renkei.jp/fhir/OperationDefinition/Patient-link',
            documentation: 'POST Parameters(other=Reference(Patient)): the custodian links its record to another institution\'s record of the same person after a kana name, birth date and gender check' },
          { name: 'unlink', definition: 'http://renkei.jp/fhir/OperationDefinition/Patient-unlink',
            documentation: 'POST Parameters(other=Reference(Patient)): removes such a link' },
          { name: 'access-log', definition: 'http://renkei.jp/fhir/OperationDefinition/Patient-access-log',
            documentation: 'GET [?since=][&_format=csv]: the patient\'s access log (AuditEvents about the caller\'s data), as a Bundle or CSV' }]
        : []),
      ...(type === 'AuditEvent'
        ? [{ name: 'verify', definition: 'http://renkei.jp/fhir/OperationDefinition/AuditEvent-verify',
            documentation: 'Administrator (GET or POST): seals pending entries, recomputes the hash chain of the audit trail and reports the first broken link' }]
        : []),
    ],
  };
}

function profileStem(type: string): string {
  return `renkei-${type.replace(/[A-Z]/g, (c, i) => (i ? '-' : '') + c.toLowerCase())}`;
}
