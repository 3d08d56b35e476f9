import type { Basic, Extension } from '@medplum/fhirtypes';

/**
 * The SubscriptionTopics the gateway publishes (R5 Backport IG). In R4 a topic is a Basic resource
 * (code SubscriptionTopic) carrying the R5 elements as cross-version extensions; topic-based
 * Subscriptions name one by its canonical URL in Subscription.criteria.
 */
export const TOPIC_BASE = 'http://renkei.jp/fhir/SubscriptionTopic';

export type Interaction = 'create' | 'update' | 'delete';

export interface TopicTrigger {
  resourceType: string;
  interactions: Interaction[];
  /** Search criteria (without the type) the new version must meet, evaluated like any search. */
  current?: string;
  /** FHIRPath the new version must satisfy, for conditions no search parameter expresses. */
  fhirPath?: string;
  description: string;
}

export interface TopicDefinition {
  id: string;
  url: string;
  title: string;
  description: string;
  triggers: TopicTrigger[];
  /** Search parameters a subscriber may filter on (Subscription.criteria's backport-filter-criteria). */
  canFilterBy: { resourceType: string; parameter: string }[];
}

const ALL: Interaction[] = ['create', 'update', 'delete'];
const patientFilter = (...types: string[]) => types.map((resourceType) => ({ resourceType, parameter: 'patient' }));

export const TOPICS: TopicDefinition[] = [
  {
    id: 'medication-change',
    url: `${TOPIC_BASE}/medication-change`,
    title: '処方・服薬の変更 (medication change)',
    description: 'A prescription (MedicationRequest) or a medication statement was created, changed or removed.',
    triggers: [
      { resourceType: 'MedicationRequest', interactions: ALL, description: 'Prescription created, changed or removed' },
      { resourceType: 'MedicationStatement', interactions: ALL, description: 'Medication statement created, changed or removed' },
    ],
    canFilterBy: patientFilter('MedicationRequest', 'MedicationStatement'),
  },
  {
    id: 'careplan-change',
    url: `${TOPIC_BASE}/careplan-change`,
    title: 'ケアプランの変更 (care plan change)',
    description: 'A care plan was created, changed or removed.',
    triggers: [{ resourceType: 'CarePlan', interactions: ALL, description: 'Care plan created, changed or removed' }],
    canFilterBy: patientFilter('CarePlan'),
  },
  {
    id: 'urgent-communication',
    url: `${TOPIC_BASE}/urgent-communication`,
    title: '急変・緊急連絡 (urgent communication)',
    description: 'A communication or request marked urgent, asap or stat was sent or changed.',
    triggers: [
      // R4 has no search parameter for Communication.priority: the trigger says it in FHIRPath.
      { resourceType: 'Communication', interactions: ['create', 'update'], fhirPath: "priority in ('urgent' | 'asap' | 'stat')", description: 'Urgent communication' },
      { resourceType: 'CommunicationRequest', interactions: ['create', 'update'], current: 'priority=urgent,asap,stat', description: 'Urgent request' },
    ],
    canFilterBy: [...patientFilter('Communication', 'CommunicationRequest'), { resourceType: 'Communication', parameter: 'recipient' }],
  },
  {
    id: 'patient-admission-discharge',
    url: `${TOPIC_BASE}/patient-admission-discharge`,
    title: '入退院 (patient admission and discharge)',
    description: 'An inpatient encounter started (in-progress) or ended (finished).',
    triggers: [{
      resourceType: 'Encounter', interactions: ['create', 'update'], current: 'class=IMP,ACUTE,NONAC&status=in-progress,finished',
      description: 'Inpatient encounter admitted or discharged',
    }],
    canFilterBy: patientFilter('Encounter'),
  },
];

const byUrl = new Map(TOPICS.map((t) => [t.url, t]));

export function topicByUrl(url: string): TopicDefinition | undefined {
  return byUrl.get(url.split('|')[0]);
}

const XVER = 'http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic';

/** The topic as the R4 Basic resource the Backport IG describes. */
export function topicResource(topic: TopicDefinition): Basic {
  const extension: Extension[] = [
    { url: 'http://hl7.org/fhir/StructureDefinition/artifact-url', valueUri: topic.url },
    { url: `${XVER}.title`, valueString: topic.title },
    { url: `${XVER}.status`, valueCode: 'active' },
    { url: `${XVER}.description`, valueMarkdown: topic.description },
    ...topic.triggers.map((t) => ({
      url: `${XVER}.resourceTrigger`,
      extension: [
        { url: 'description', valueMarkdown: t.description },
        { url: 'resource', valueUri: `http://hl7.org/fhir/StructureDefinition/${t.resourceType}` },
        ...t.interactions.map((i) => ({ url: 'supportedInteraction', valueCode: i })),
        ...(t.current ? [{ url: 'queryCriteria', extension: [{ url: 'current', valueString: t.current }] }] : []),
        ...(t.fhirPath ? [{ url: 'fhirPathCriteria', valueString: t.fhirPath }] : []),
      ],
    })),
    ...topic.canFilterBy.map((f) => ({
      url: `${XVER}.canFilterBy`,
      extension: [{ url: 'resource', valueUri: f.resourceType }, { url: 'filterParameter', valueString: f.parameter }],
    })),
  ];
  return {
    resourceType: 'Basic',
    id: `topic-${topic.id}`,
    meta: { profile: ['http://hl7.org/fhir/5.0/StructureDefinition/profile-SubscriptionTopic'] },
    extension,
    code: { coding: [{ system: 'http://hl7.org/fhir/fhir-types', code: 'SubscriptionTopic' }] },
  };
}
