import { newId } from '../store/ids.js';
import type { AuditEvent } from '@medplum/fhirtypes';
import type { AuditRow } from '../store/write-batch.js';

export const RENKEI_SYSTEM = 'http://renkei.jp/fhir';
export const CLIENT_ID_SYSTEM = `${RENKEI_SYSTEM}/NamingSystem/client-id`;

/** Who acted: the gateway administrator or a registered client acting for an Organization. */
export interface AuditActor {
  admin: boolean;
  clientId?: string;
  organizationId?: string;
  purposeOfUse?: string;
  breakGlassReason?: string;
}

export type Interaction =
  | 'create' | 'update' | 'delete' | 'read' | 'vread' | 'search' | 'history' | 'transaction' | 'batch' | 'operation' | 'disclose';

const ACTION: Record<Interaction, AuditEvent['action']> = {
  create: 'C', update: 'U', delete: 'D', read: 'R', vread: 'R', search: 'E', history: 'R',
  transaction: 'E', batch: 'E', operation: 'E', disclose: 'R',
};

const RESTFUL_INTERACTION: Record<Interaction, string> = {
  create: 'create', update: 'update', delete: 'delete', read: 'read', vread: 'vread', search: 'search-type',
  history: 'history-instance', transaction: 'transaction', batch: 'batch', operation: 'operation', disclose: 'disclose',
};

const RESTFUL_SYSTEM = 'http://hl7.org/fhir/restful-interaction';
/** A disclosure to another Organization is an ISO 21089 lifecycle event, not a REST interaction. */
const LIFECYCLE_SYSTEM = 'http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle';

export interface AuditFacts {
  interaction: Interaction;
  actor: AuditActor;
  /** '0' success, '4' minor failure (refused, not found), '8' serious failure. */
  outcome?: '0' | '4' | '8' | '12';
  outcomeDesc?: string;
  /** References of the resources involved (`Type/id` or `Type/id/_history/n`). */
  entities?: string[];
  patientId?: string | null;
  owner?: string | null;
  /** What permitted a disclosure to another organization: `Consent/<id>` or `OrganizationAffiliation/<id>`. */
  basis?: string | string[];
  /** The operation invoked (`$link`, `$everything`, …) for interaction `operation`. */
  operation?: string;
  /** The query string of a search, kept as BALP does (base64). */
  query?: string;
  recorded?: Date;
}

/** Builds the AuditEvent resource (Basic Audit Log Patterns style) and its indexed columns. */
export function auditRow(facts: AuditFacts): AuditRow {
  const id = newId();
  const recorded = facts.recorded ?? new Date();
  const outcome = facts.outcome ?? '0';
  const event: AuditEvent = {
    resourceType: 'AuditEvent',
    id,
    type: { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest', display: 'RESTful Operation' },
    subtype: [
      facts.interaction === 'disclose'
        ? { system: LIFECYCLE_SYSTEM, code: 'disclose', display: 'Disclose / 他機関への開示' }
        : { system: RESTFUL_SYSTEM, code: RESTFUL_INTERACTION[facts.interaction] },
      ...(facts.operation ? [{ system: `${RENKEI_SYSTEM}/CodeSystem/operation`, code: facts.operation }] : []),
    ],
    action: ACTION[facts.interaction],
    recorded: recorded.toISOString(),
    outcome,
    ...(facts.outcomeDesc ? { outcomeDesc: facts.outcomeDesc } : {}),
    ...(facts.actor.purposeOfUse
      ? { purposeOfEvent: [{
          coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: facts.actor.purposeOfUse }],
          ...(facts.actor.breakGlassReason ? { text: `break-glass: ${facts.actor.breakGlassReason}` } : {}),
        }] }
      : {}),
    agent: agents(facts.actor),
    source: {
      observer: { display: 'renkei gateway' },
      type: [{ system: 'http://terminology.hl7.org/CodeSystem/security-source-type', code: '4', display: 'Application Server' }],
    },
    entity: entities(facts),
  };
  return {
    id,
    recorded,
    action: RESTFUL_INTERACTION[facts.interaction],
    outcome,
    agentOrg: facts.actor.organizationId ?? null,
    agentClient: facts.actor.clientId ?? null,
    owner: facts.owner ?? null,
    patientId: facts.patientId ?? null,
    entity: [...(facts.entities ?? []), ...bases(facts)],
    purpose: facts.actor.purposeOfUse ?? null,
    json: JSON.stringify(event),
  };
}

function agents(actor: AuditActor): AuditEvent['agent'] {
  if (actor.admin) {
    return [{ type: applicationRole(), who: { display: 'gateway administrator' }, requestor: true }];
  }
  return [
    {
      type: applicationRole(),
      who: { identifier: { system: CLIENT_ID_SYSTEM, value: actor.clientId } },
      requestor: true,
    },
    ...(actor.organizationId
      ? [{ who: { reference: `Organization/${actor.organizationId}` }, requestor: false }]
      : []),
  ];
}

function applicationRole() {
  return { coding: [{ system: 'http://dicom.nema.org/resources/ontology/DCM', code: '110150', display: 'Application' }] };
}

function entities(facts: AuditFacts): AuditEvent['entity'] {
  const list: NonNullable<AuditEvent['entity']> = [];
  if (facts.patientId) {
    list.push({ what: { reference: `Patient/${facts.patientId}` }, role: objectRole('1', 'Patient') });
  }
  for (const reference of facts.entities ?? []) {
    if (facts.patientId && reference === `Patient/${facts.patientId}`) continue;
    list.push({ what: { reference }, role: objectRole('4', 'Domain Resource') });
  }
  if (facts.query !== undefined) {
    list.push({ role: objectRole('24', 'Query'), query: Buffer.from(facts.query).toString('base64') });
  }
  for (const basis of bases(facts)) {
    list.push({ what: { reference: basis }, role: objectRole('13', 'Security Resource'), description: 'decision basis / 開示の根拠' });
  }
  return list;
}

const bases = (facts: AuditFacts): string[] => (facts.basis === undefined ? [] : Array.isArray(facts.basis) ? facts.basis : [facts.basis]);

function objectRole(code: string, display: string) {
  return { system: 'http://terminology.hl7.org/CodeSystem/object-role', code, display };
}
