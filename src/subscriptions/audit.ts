import { newId } from '../store/ids.js';
import type { AuditEvent } from '@medplum/fhirtypes';
import type { AuditRow } from '../store/write-batch.js';

export interface NotificationAuditFacts {
  subscriptionId: string;
  subscriber: string | null;
  kind: 'event' | 'handshake' | 'heartbeat';
  /** Host of the endpoint the notification went to. */
  endpointHost: string;
  /** The Subscription's purpose of use, for which the notification was checked against Consent. */
  purpose: string;
  /** For an event: the resource version disclosed, its owner and patient. */
  resource?: { type: string; id: string; versionId: number; owner: string | null; patientId: string | null };
  eventNumber?: number | null;
  recorded?: Date;
}

const NOTIFICATION_TYPE = 'http://hl7.org/fhir/subscription-notification-type';

/**
 * The AuditEvent of a notification sent: an export (DICOM 110106) by the gateway to the subscriber's
 * Organization (information recipient), naming the Subscription and, for an event, the resource version
 * disclosed and its patient. Stored with the delivery's settlement, so a sent notification always has one
 * (`AuditEvent?subtype=notification`).
 */
export function notificationAudit(facts: NotificationAuditFacts): AuditRow {
  const id = newId();
  const recorded = facts.recorded ?? new Date();
  const kind = facts.kind === 'event' ? 'event-notification' : facts.kind;
  const resourceRef = facts.resource && `${facts.resource.type}/${facts.resource.id}/_history/${facts.resource.versionId}`;
  const subscriptionRef = `Subscription/${facts.subscriptionId}`;
  const entity: NonNullable<AuditEvent['entity']> = [
    ...(facts.resource?.patientId ? [{ what: { reference: `Patient/${facts.resource.patientId}` }, role: role('1', 'Patient') }] : []),
    ...(resourceRef ? [{ what: { reference: resourceRef }, role: role('4', 'Domain Resource') }] : []),
    { what: { reference: subscriptionRef }, role: role('13', 'Security Resource'), description: facts.eventNumber ? `event ${facts.eventNumber}` : kind },
  ];
  const event: AuditEvent = {
    resourceType: 'AuditEvent',
    id,
    type: { system: 'http://dicom.nema.org/resources/ontology/DCM', code: '110106', display: 'Export' },
    subtype: [
      { system: 'http://renkei.jp/fhir/CodeSystem/audit-event-subtype', code: 'notification', display: 'Subscription notification' },
      { system: NOTIFICATION_TYPE, code: kind },
    ],
    action: 'E',
    recorded: recorded.toISOString(),
    outcome: '0',
    purposeOfEvent: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: facts.purpose }] }],
    agent: [
      {
        type: { coding: [{ system: 'http://dicom.nema.org/resources/ontology/DCM', code: '110153', display: 'Source Role ID' }] },
        who: { display: 'renkei gateway' },
        requestor: false,
      },
      {
        type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP', display: 'information recipient' }] },
        who: facts.subscriber ? { reference: `Organization/${facts.subscriber}` } : { display: 'no organization' },
        requestor: true,
        network: { address: facts.endpointHost, type: '1' },
      },
    ],
    source: {
      observer: { display: 'renkei gateway' },
      type: [{ system: 'http://terminology.hl7.org/CodeSystem/security-source-type', code: '4', display: 'Application Server' }],
    },
    entity,
  };
  return {
    id,
    recorded,
    action: 'notification',
    outcome: '0',
    agentOrg: facts.subscriber,
    agentClient: null,
    owner: facts.resource?.owner ?? null,
    patientId: facts.resource?.patientId ?? null,
    entity: [...(resourceRef ? [resourceRef] : []), subscriptionRef],
    purpose: facts.purpose,
    json: JSON.stringify(event),
  };
}

function role(code: string, display: string) {
  return { system: 'http://terminology.hl7.org/CodeSystem/object-role', code, display };
}
