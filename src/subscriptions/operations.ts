import type { Bundle, Parameters, Subscription } from '@medplum/fhirtypes';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { authenticate } from '../auth/middleware.js';
import { authOf, checkScope } from '../auth/context.js';
import { fhirBase, sendJson } from '../fhir/http.js';
import { parametersBody } from '../fhir/operations/parameters.js';
import { badRequest, notFound } from '../fhir/outcome.js';
import { jsonBody } from '../nul-characters.js';
import type { Services } from '../services.js';
import { visibilitySql } from '../store/access.js';
import { SqlParams } from '../store/sql.js';
import { notificationBundle, subscriptionStatus, type EventFacts } from './notification.js';
import { parseSubscription, type PayloadContent } from './spec.js';
import { WEBSOCKET_PATH } from './websocket/hub.js';
import { issueBindingToken } from './websocket/tokens.js';

const MAX_EVENTS = 100;

/**
 * The Backport IG's operations, served in front of the FHIR router: `Subscription/$status` (type and
 * instance level: SubscriptionStatus of the caller's subscriptions), `Subscription/{id}/$events`
 * (the events of a range of event numbers, to fill a gap; each resource checked against the
 * subscriber's current access, as a notification would be) and `$get-ws-binding-token` (type and
 * instance level: a token binding a WebSocket to the caller's websocket subscriptions).
 */
export function subscriptionOperations(services: Services): express.Router {
  const router = express.Router();
  const json = jsonBody({ type: ['application/fhir+json', 'application/json'], limit: '1mb' });
  const guard = [authenticate(services), json] as RequestHandler[];
  const when = (operation: string, handler: (req: Request, res: Response) => Promise<void>) =>
    (req: Request, res: Response, next: NextFunction) => {
      if (req.params.operation !== operation) return next();
      run(guard, req, res)
        .then(() => {
          checkScope(authOf(res), 'Subscription', 'read');
          return handler(req, res);
        })
        .catch(next);
    };
  router.all('/Subscription/:operation', when('$status', (req, res) => status(services, req, res)));
  router.all('/Subscription/:id/:operation', when('$status', (req, res) => status(services, req, res)));
  router.all('/Subscription/:id/:operation', when('$events', (req, res) => events(services, req, res)));
  router.all('/Subscription/:operation', when('$get-ws-binding-token', (req, res) => bindingToken(services, req, res)));
  router.all('/Subscription/:id/:operation', when('$get-ws-binding-token', (req, res) => bindingToken(services, req, res)));
  return router;
}

async function run(handlers: RequestHandler[], req: Request, res: Response): Promise<void> {
  for (const handler of handlers) {
    await new Promise<void>((resolve, reject) => {
      void handler(req, res, (err?: unknown) => (err ? reject(err) : resolve()));
    });
  }
}

/** Operation parameters from the query string and, for POST, a Parameters body. */
function params(req: Request, name: string): string[] {
  const fromQuery = ([] as unknown[]).concat(req.query[name] ?? []).map(String);
  const fromBody = ((req.method === 'POST' ? parametersBody(req.body) : undefined)?.parameter ?? []).filter((p) => p.name === name)
    .map((p) => p.valueString ?? p.valueCode ?? p.valueId ?? p.valueUnsignedInt?.toString() ?? p.valueInteger?.toString())
    .filter((v): v is string => v !== undefined);
  return [...fromQuery, ...fromBody];
}

interface VisibleSubscription {
  id: string;
  owner: string | null;
  json: string;
  status: string | null;
  events: number | null;
  last_error: string | null;
  purpose: string | null;
}

async function visibleSubscriptions(services: Services, res: Response, ids: string[] | undefined): Promise<VisibleSubscription[]> {
  const auth = authOf(res);
  const sql = new SqlParams();
  const where = [`r.resource_type = 'Subscription'`, 'NOT r.deleted', visibilitySql(auth, 'r', sql)];
  if (ids) where.push(`r.id = ANY(${sql.add(ids)}::text[])`);
  const { rows } = await services.db.query<VisibleSubscription>(
    `SELECT r.id, r.owner, r.content::text AS json, s.status, s.events, s.last_error, s.purpose FROM resource r
     LEFT JOIN subscription_state s ON s.id = r.id WHERE ${where.join(' AND ')} ORDER BY r.id LIMIT 1000`, sql.values);
  return rows;
}

async function status(services: Services, req: Request, res: Response): Promise<void> {
  const ids = req.params.id ? [String(req.params.id)] : params(req, 'id').flatMap((v) => v.split(','));
  const wanted = params(req, 'status').flatMap((v) => v.split(','));
  const found = await visibleSubscriptions(services, res, ids.length ? ids : undefined);
  if (req.params.id && !found.length) throw notFound(`Subscription/${req.params.id} is not known / 見つかりません`);
  const base = fhirBase(req, services.config);
  const entries = found
    .map((s) => ({ s, current: s.status ?? (JSON.parse(s.json) as Subscription).status }))
    .filter(({ current }) => !wanted.length || wanted.includes(current))
    .map(({ s, current }) => {
      const topic = (JSON.parse(s.json) as Subscription).criteria;
      const resource = subscriptionStatus({
        subscriptionId: s.id, topicUrl: topic?.startsWith('http') ? topic : undefined, status: current, type: 'query-status',
        eventsSinceStart: Number(s.events ?? 0), error: current === 'error' ? s.last_error : null, events: [], content: 'id-only', baseUrl: base,
      });
      return { fullUrl: `urn:uuid:${resource.id}`, resource, search: { mode: 'match' as const } };
    });
  const bundle: Bundle = { resourceType: 'Bundle', type: 'searchset', total: entries.length, entry: entries };
  sendJson(res, 200, JSON.stringify(bundle));
}

async function events(services: Services, req: Request, res: Response): Promise<void> {
  const id = String(req.params.id);
  const [subscription] = await visibleSubscriptions(services, res, [id]);
  if (!subscription) throw notFound(`Subscription/${id} is not known / 見つかりません`);
  const number = (name: string) => {
    const raw = params(req, name)[0];
    if (raw === undefined) return undefined;
    if (!/^\d{1,15}$/.test(raw)) throw badRequest(`${name} must be an event number`);
    return Number(raw);
  };
  const spec = parseSubscription({ ...(JSON.parse(subscription.json) as Subscription), id });
  const most = Math.min(MAX_EVENTS, spec.maxCount ?? MAX_EVENTS);
  const total = Number(subscription.events ?? 0);
  const since = number('eventsSinceNumber') ?? Math.max(1, total - most + 1);
  const until = Math.min(number('eventsUntilNumber') ?? total, since + most - 1);
  const requested = params(req, 'content')[0] as PayloadContent | undefined;
  if (requested && !['empty', 'id-only', 'full-resource'].includes(requested)) throw badRequest('content must be empty, id-only or full-resource');
  const sql = new SqlParams();
  const viewer = { admin: false, organizationId: subscription.owner ?? undefined, purposeOfUse: subscription.purpose ?? spec.purpose };
  const { rows } = await services.db.query<{ event_number: number; changed_at: Date | null; created_at: Date; resource_type: string; resource_id: string; version_id: number; action: EventFacts['action']; visible: boolean; json: string | null }>(
    `SELECT d.event_number, d.changed_at, d.created_at, d.resource_type, d.resource_id, d.version_id, d.action,
       v.id IS NOT NULL AS visible, v.content::text AS json
     FROM delivery d LEFT JOIN resource_version v ON v.resource_type = d.resource_type AND v.id = d.resource_id
       AND v.version_id = d.version_id AND ${visibilitySql(viewer, 'v', sql)}
     WHERE d.subscription_id = ${sql.add(id)} AND d.kind = 'event' AND d.event_number BETWEEN ${sql.add(since)} AND ${sql.add(until)}
     ORDER BY d.event_number`, sql.values);
  const bundle = notificationBundle({
    subscriptionId: id, topicUrl: spec.topic?.url, status: subscription.status ?? spec.status, type: 'query-event',
    eventsSinceStart: total, content: requested ?? spec.content, baseUrl: fhirBase(req, services.config),
    events: rows.map((r) => ({
      number: Number(r.event_number), timestamp: r.changed_at ?? r.created_at, resourceType: r.resource_type, id: r.resource_id,
      versionId: r.version_id, action: r.action, visible: r.visible, resourceJson: r.json,
    })),
  });
  sendJson(res, 200, JSON.stringify(bundle));
}

/** A token for the named websocket subscriptions of the caller (instance level: that one). */
async function bindingToken(services: Services, req: Request, res: Response): Promise<void> {
  const ids = [...new Set(req.params.id ? [String(req.params.id)] : params(req, 'id').flatMap((v) => v.split(',')))];
  if (!ids.length) throw badRequest('Name the subscriptions with id / idで購読を指定してください');
  const found = await visibleSubscriptions(services, res, ids);
  for (const id of ids) {
    const subscription = found.find((s) => s.id === id);
    if (!subscription) throw notFound(`Subscription/${id} is not known / 見つかりません`);
    if ((JSON.parse(subscription.json) as Subscription).channel?.type !== 'websocket')
      throw badRequest(`Subscription/${id} does not use the websocket channel / websocketの購読ではありません`);
  }
  const { token, expiresAt } = await issueBindingToken(services.db, ids);
  // Beside /fhir, under the same prefix as the public base URL.
  const websocketUrl = new URL(`..${WEBSOCKET_PATH}`, `${fhirBase(req, services.config).replace(/^http/, 'ws')}/`).toString();
  const result: Parameters = {
    resourceType: 'Parameters',
    parameter: [
      { name: 'token', valueString: token },
      { name: 'expiration', valueDateTime: expiresAt.toISOString() },
      ...ids.map((id) => ({ name: 'subscription', valueString: `Subscription/${id}` })),
      { name: 'websocket-url', valueUrl: websocketUrl },
    ],
  };
  sendJson(res, 200, JSON.stringify(result));
}
