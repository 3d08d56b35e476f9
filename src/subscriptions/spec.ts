import type { Extension, Subscription } from '@medplum/fhirtypes';
import { FhirError } from '../fhir/outcome.js';
import { ADMIN_VIEWER, DEFAULT_PURPOSE } from '../store/access.js';
import { isSupportedType } from '../store/resource-types.js';
import { criterionSql } from '../store/search/conditions.js';
import { parseCriterion, type Criterion, type QueryParams } from '../store/search/request.js';
import { SqlParams } from '../store/sql.js';
import { topicByUrl, type TopicDefinition } from './topics.js';

const BACKPORT = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition';
export const BACKPORT_PROFILE = `${BACKPORT}/backport-subscription`;
export const EXTENSIONS = {
  filterCriteria: `${BACKPORT}/backport-filter-criteria`,
  payloadContent: `${BACKPORT}/backport-payload-content`,
  heartbeatPeriod: `${BACKPORT}/backport-heartbeat-period`,
  timeout: `${BACKPORT}/backport-timeout`,
  maxCount: `${BACKPORT}/backport-max-count`,
  /** The subscriber's signing secret (HMAC-SHA256 of each notification body). */
  secret: 'http://renkei.jp/fhir/StructureDefinition/subscription-secret',
  /** The purpose of use (HL7 v3 ActReason) its notifications are decided for; stamped from the writing request. */
  purpose: 'http://renkei.jp/fhir/StructureDefinition/subscription-purpose-of-use',
};

export type PayloadContent = 'empty' | 'id-only' | 'full-resource';
export type ChannelType = 'rest-hook' | 'websocket';

/** Search criteria for one resource type: compiled with the same code as a search on /fhir. */
export interface TypedCriteria {
  resourceType: string;
  criteria: Criterion[];
}

/** A filter names one type (`Type?params`) or, without a type, applies to every type of the topic. */
export interface TopicFilter {
  resourceType?: string;
  /** The filter compiled for each type it applies to. */
  byType: Record<string, Criterion[]>;
}

/** What a Subscription asks for, read and checked once. */
export interface SubscriptionSpec {
  id: string;
  status: string;
  kind: 'criteria' | 'topic';
  /** Criteria-based (R4): `Type?params`. */
  criteria?: TypedCriteria;
  /** Topic-based (Backport IG): the topic and the subscriber's filters. */
  topic?: TopicDefinition;
  filters: TopicFilter[];
  /** rest-hook: POSTed to `endpoint`; websocket (topic-based): sent to the clients bound to it (see websocket/). */
  channel: ChannelType;
  /** The rest-hook endpoint ('' for a websocket). */
  endpoint: string;
  /** MIME type of the payload; absent = no payload (R4 criteria-based: an empty POST). */
  payload?: string;
  content: PayloadContent;
  headers: [name: string, value: string][];
  secret?: string;
  heartbeatSeconds?: number;
  timeoutSeconds?: number;
  /** Backport `backport-max-count`: at most this many events (and resources) in one notification Bundle. */
  maxCount?: number;
  /** Purpose of use the subscriber's view is decided for (Consent provisions name purposes). */
  purpose: string;
  end?: Date;
  resourceTypes: string[];
}

/** A Subscription the gateway cannot serve, with the element at fault. */
export class SpecError extends Error {
  constructor(message: string, readonly expression: string) {
    super(message);
  }
}

const FHIR_JSON = 'application/fhir+json';
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Headers the gateway sets itself; a Subscription cannot replace them. */
const RESERVED_HEADERS = /^(host|content-length|content-type|transfer-encoding|connection|upgrade|te|trailer|keep-alive|x-renkei-.*)$/i;
export const MIN_SECRET_LENGTH = 16;

export function isTopicBased(subscription: Subscription): boolean {
  return Boolean(subscription.meta?.profile?.some((p) => p.split('|')[0] === BACKPORT_PROFILE)) || /^https?:\/\//.test(subscription.criteria ?? '');
}

/** Reads a stored Subscription into a spec; throws SpecError naming the first element it cannot serve. */
export function parseSubscription(subscription: Subscription & { id: string }): SubscriptionSpec {
  const channel = subscription.channel;
  const type = channel?.type;
  if (type !== 'rest-hook' && type !== 'websocket')
    throw new SpecError(`Channel type ${type ?? '(none)'} is not supported; use rest-hook or websocket / rest-hookかwebsocketのみ対応しています`, 'Subscription.channel.type');
  const topicBased = isTopicBased(subscription);
  const endpoint = type === 'rest-hook' ? channel.endpoint ?? '' : '';
  if (type === 'rest-hook' && !endpoint) throw new SpecError('A rest-hook Subscription needs channel.endpoint / 通知先URLがありません', 'Subscription.channel.endpoint');
  if (type === 'websocket' && !topicBased)
    throw new SpecError('A websocket Subscription must be topic-based (Backport IG) / websocketはトピック型のみ対応しています', 'Subscription.channel.type');
  if (type === 'websocket' && channel.header?.length)
    throw new SpecError('channel.header is sent only over rest-hook / websocketではヘッダーを送れません', 'Subscription.channel.header');
  const payload = normalizePayload(channel.payload);
  const base = {
    id: subscription.id,
    status: subscription.status,
    channel: type,
    endpoint,
    payload,
    headers: (channel.header ?? []).map(parseHeader),
    secret: extensionValue(subscription.extension, EXTENSIONS.secret)?.valueString,
    timeoutSeconds: positive(extensionValue(channel.extension, EXTENSIONS.timeout)?.valueUnsignedInt),
    purpose: extensionValue(subscription.extension, EXTENSIONS.purpose)?.valueCode ?? DEFAULT_PURPOSE,
    end: subscription.end ? new Date(subscription.end) : undefined,
  };
  if (!topicBased) {
    const criteria = parseCriteria(subscription.criteria ?? '', 'Subscription.criteria');
    return { ...base, kind: 'criteria', criteria, filters: [], content: payload ? 'full-resource' : 'empty', resourceTypes: [criteria.resourceType] };
  }
  const topic = topicByUrl(subscription.criteria ?? '');
  if (!topic) throw new SpecError(`Unknown topic ${subscription.criteria}; see Basic?code=SubscriptionTopic / 未知のトピックです`, 'Subscription.criteria');
  if (!payload) throw new SpecError('A topic-based Subscription needs channel.payload application/fhir+json', 'Subscription.channel.payload');
  const element = (subscription as { _criteria?: { extension?: Extension[] } })._criteria;
  const filters = (element?.extension ?? [])
    .filter((e) => e.url === EXTENSIONS.filterCriteria)
    .map((e, i) => parseFilter(topic, e.valueString ?? '', `Subscription.criteria.extension[${i}]`));
  const contentExtension = (channel as { _payload?: { extension?: Extension[] } })._payload?.extension;
  const content = (extensionValue(contentExtension, EXTENSIONS.payloadContent)?.valueCode ?? 'id-only') as PayloadContent;
  if (!['empty', 'id-only', 'full-resource'].includes(content))
    throw new SpecError(`Payload content ${content} is not one of empty, id-only, full-resource`, 'Subscription.channel.payload');
  const heartbeatSeconds = positive(extensionValue(channel.extension, EXTENSIONS.heartbeatPeriod)?.valueUnsignedInt);
  const maxCount = readMaxCount(channel.extension);
  const resourceTypes = [...new Set(topic.triggers.map((t) => t.resourceType))];
  return { ...base, kind: 'topic', topic, filters, content, heartbeatSeconds, maxCount, resourceTypes };
}

function normalizePayload(payload: string | undefined): string | undefined {
  if (!payload) return undefined;
  const mime = payload.split(';')[0].trim().toLowerCase();
  if (mime === FHIR_JSON || mime === 'application/json') return FHIR_JSON;
  throw new SpecError(`Payload ${payload} is not supported; use application/fhir+json or none / JSONのみ対応しています`, 'Subscription.channel.payload');
}

function parseHeader(header: string, i: number): [string, string] {
  const colon = header.indexOf(':');
  const name = colon > 0 ? header.slice(0, colon).trim() : '';
  const value = colon > 0 ? header.slice(colon + 1).trim() : '';
  const where = `Subscription.channel.header[${i}]`;
  if (!TOKEN.test(name) || /[\r\n]/.test(value)) throw new SpecError(`channel.header must be "Name: value", got "${header}"`, where);
  if (RESERVED_HEADERS.test(name)) throw new SpecError(`channel.header cannot set ${name}: the gateway sets it`, where);
  return [name, value];
}

/** `Type?a=1&b=2` (or just `Type`), each parameter checked as a search on /fhir would check it. */
export function parseCriteria(text: string, expression: string): TypedCriteria {
  const q = text.indexOf('?');
  const resourceType = (q < 0 ? text : text.slice(0, q)).trim();
  if (!isSupportedType(resourceType))
    throw new SpecError(`Criteria must start with a resource type the gateway holds, got "${text}" / 検索条件が正しくありません`, expression);
  return { resourceType, criteria: parseParams(resourceType, q < 0 ? '' : text.slice(q + 1), expression) };
}

function parseParams(resourceType: string, query: string, expression: string): Criterion[] {
  const params = [...new URLSearchParams(query)] as QueryParams;
  return params.map(([key, value]) => {
    if (key.startsWith('_') && !['_id', '_lastUpdated', '_tag', '_profile', '_security', '_source'].includes(key.split(':')[0]))
      throw new SpecError(`${key} shapes search results; it has no meaning in criteria`, expression);
    try {
      return compiled(parseCriterion(resourceType, key, value));
    } catch (err) {
      if (err instanceof FhirError) throw new SpecError(err.message, expression);
      throw err;
    }
  });
}

/**
 * A criterion whose value the search code refuses (a date that is not one, a quantity without a number)
 * is refused here, as a search on /fhir would refuse it: stored, it would fail the matching of every
 * change of its type, for every subscriber.
 */
function compiled(criterion: Criterion): Criterion {
  criterionSql(criterion, 'r', new SqlParams(), ADMIN_VIEWER);
  return criterion;
}

/**
 * A filter is `Type?params` (that type only) or `params` (every type of the topic), and may use only the
 * parameters the topic offers for each type it applies to (SubscriptionTopic.canFilterBy).
 */
function parseFilter(topic: TopicDefinition, text: string, expression: string): TopicFilter {
  const types = [...new Set(topic.triggers.map((t) => t.resourceType))];
  const typed = /^[A-Z][A-Za-z]+\?/.test(text) || /^[A-Z][A-Za-z]+$/.test(text);
  if (typed) {
    const { resourceType, criteria } = parseCriteria(text, expression);
    if (!types.includes(resourceType)) throw new SpecError(`Topic ${topic.url} has no trigger on ${resourceType}`, expression);
    checkFilterParameters(topic, resourceType, text.slice(text.indexOf('?') + 1), expression);
    return { resourceType, byType: { [resourceType]: criteria } };
  }
  for (const type of types) checkFilterParameters(topic, type, text, expression);
  return { byType: Object.fromEntries(types.map((type) => [type, parseParams(type, text, expression)])) };
}

function checkFilterParameters(topic: TopicDefinition, resourceType: string, query: string, expression: string): void {
  if (!query.includes('=')) return;
  const offered = topic.canFilterBy.filter((f) => f.resourceType === resourceType).map((f) => f.parameter);
  for (const [key] of new URLSearchParams(query)) {
    const name = key.split(/[:.]/)[0];
    if (!offered.includes(name))
      throw new SpecError(
        `Topic ${topic.url} offers no filter ${name} on ${resourceType} (offered: ${offered.join(', ') || 'none'}) / このトピックでは使えない絞り込み条件です`,
        expression,
      );
  }
}

function readMaxCount(extensions: Extension[] | undefined): number | undefined {
  const extension = extensionValue(extensions, EXTENSIONS.maxCount);
  if (!extension) return undefined;
  const value = extension.valueUnsignedInt ?? extension.valuePositiveInt;
  if (value === undefined || !Number.isInteger(value) || value < 1)
    throw new SpecError('backport-max-count must be a positive integer / 最大件数は1以上です', 'Subscription.channel.extension');
  return value;
}

function extensionValue(extensions: Extension[] | undefined, url: string): Extension | undefined {
  return extensions?.find((e) => e.url === url);
}

function positive(n: number | undefined): number | undefined {
  return n !== undefined && n > 0 ? n : undefined;
}
