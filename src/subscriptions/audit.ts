import { newId } from '../store/ids.js';
import type { AuditRow } from '../store/write-batch.js';

export interface NotificationAuditFacts {
  subscriptionId: string;
  subscriber: string | null;
  kind: 'event' | 'handshake' | 'heartbeat';
  /** Host of the endpoint the notification went to (none for a websocket: it went to the bound clients). */
  endpointHost?: string;
  /** The Subscription's purpose of use, for which the notification was checked against Consent. */
  purpose: string;
  /** For an event: the resource version disclosed, its owner and patient. */
  resource?: { type: string; id: string; versionId: number; owner: string | null; patientId: string | null };
  eventNumber?: number | null;
  recorded?: Date;
}

const NOTIFICATION_TYPE = 'http://hl7.org/fhir/subscription-notification-type';

// The parts every notification's AuditEvent shares, serialised once: a fan-out writes one per delivery.
const EXPORT_TYPE = JSON.stringify({ system: 'http://dicom.nema.org/resources/ontology/DCM', code: '110106', display: 'Export' });
const NOTIFICATION_SUBTYPE = JSON.stringify({ system: 'http://renkei.jp/fhir/CodeSystem/audit-event-subtype', code: 'notification', display: 'Subscription notification' });
const GATEWAY_AGENT = JSON.stringify({
  type: { coding: [{ system: 'http://dicom.nema.org/resources/ontology/DCM', code: '110153', display: 'Source Role ID' }] },
  who: { display: 'renkei gateway' },
  requestor: false,
});
const RECIPIENT_TYPE = JSON.stringify({ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP', display: 'information recipient' }] });
const SOURCE = JSON.stringify({
  observer: { display: 'renkei gateway' },
  type: [{ system: 'http://terminology.hl7.org/CodeSystem/security-source-type', code: '4', display: 'Application Server' }],
});
const PURPOSE_SYSTEM = 'http://terminology.hl7.org/CodeSystem/v3-ActReason';
const q = JSON.stringify;
const PATIENT_ROLE = q(role('1', 'Patient'));
const RESOURCE_ROLE = q(role('4', 'Domain Resource'));
const SECURITY_ROLE = q(role('13', 'Security Resource'));
const entityJson = (reference: string, roleJson: string, description?: string) =>
  `{"what":{"reference":${q(reference)}},"role":${roleJson}${description === undefined ? '' : `,"description":${q(description)}`}}`;

/**
 * The AuditEvent of a notification sent: an export (DICOM 110106) by the gateway to the subscriber's
 * Organization (information recipient), naming the Subscription and, for an event, the resource version
 * disclosed and its patient. Stored with the delivery's settlement, so a sent notification always has one
 * (`AuditEvent?subtype=notification`). Written as text around the shared parts (see above).
 */
export function notificationAudit(facts: NotificationAuditFacts): AuditRow {
  const id = newId();
  const recorded = facts.recorded ?? new Date();
  const kind = facts.kind === 'event' ? 'event-notification' : facts.kind;
  const resourceRef = facts.resource && `${facts.resource.type}/${facts.resource.id}/_history/${facts.resource.versionId}`;
  const subscriptionRef = `Subscription/${facts.subscriptionId}`;
  const entity = [
    ...(facts.resource?.patientId ? [entityJson(`Patient/${facts.resource.patientId}`, PATIENT_ROLE)] : []),
    ...(resourceRef ? [entityJson(resourceRef, RESOURCE_ROLE)] : []),
    entityJson(subscriptionRef, SECURITY_ROLE, facts.eventNumber ? `event ${facts.eventNumber}` : kind),
  ];
  const network = facts.endpointHost ? `,"network":{"address":${q(facts.endpointHost)},"type":"1"}` : '';
  const who = facts.subscriber ? `{"reference":${q(`Organization/${facts.subscriber}`)}}` : '{"display":"no organization"}';
  const json = `{"resourceType":"AuditEvent","id":${q(id)},"type":${EXPORT_TYPE},`
    + `"subtype":[${NOTIFICATION_SUBTYPE},{"system":${q(NOTIFICATION_TYPE)},"code":${q(kind)}}],`
    + `"action":"E","recorded":"${recorded.toISOString()}","outcome":"0",`
    + `"purposeOfEvent":[{"coding":[{"system":${q(PURPOSE_SYSTEM)},"code":${q(facts.purpose)}}]}],`
    + `"agent":[${GATEWAY_AGENT},{"type":${RECIPIENT_TYPE},"who":${who},"requestor":true${network}}],`
    + `"source":${SOURCE},"entity":[${entity.join(',')}]}`;
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
    json,
  };
}

function role(code: string, display: string) {
  return { system: 'http://terminology.hl7.org/CodeSystem/object-role', code, display };
}
