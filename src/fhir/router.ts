import express, { type NextFunction, type Request, type Response } from 'express';
import { authenticate } from '../auth/middleware.js';
import { authOf, checkScope, type AuthContext, type Interaction } from '../auth/context.js';
import type { Services } from '../services.js';
import { isSupportedType } from '../store/resource-types.js';
import type { QueryParams } from '../store/search/request.js';
import { historyJson, searchsetJson } from './bundles.js';
import type { Caller } from './caller.js';
import { capabilityStatement } from './capability.js';
import { fhirBase, FHIR_JSON, preferLenient, sendJson, sendResult } from './http.js';
import { FhirError, notSupported } from './outcome.js';
import { versionFromEtag } from './results.js';
import { FhirService } from './service.js';
import { processBundle } from './transaction.js';
import { historyQuery } from './history.js';
import { auditEventRouter } from './audit-router.js';
import { patientOperations } from './operations/patient.js';
import { validateOperation } from './operations/validate.js';
import { formBody, jsonBody } from '../nul-characters.js';

type Handler = (req: Request, res: Response) => Promise<void>;

export function fhirRouter(services: Services): express.Router {
  const router = express.Router();
  const fhir = new FhirService(services.db, services.repo, services.audit);
  const wrap = (fn: Handler) => (req: Request, res: Response, next: NextFunction) => fn(req, res).catch(next);
  const patientOps = patientOperations(fhir, services);

  router.use(negotiateFormat);
  router.use(
    jsonBody({ type: ['application/fhir+json', 'application/json', 'application/*+json'], limit: services.config.maxBodyBytes }),
  );
  router.use(formBody({ extended: false, limit: '1mb' }));
  router.get('/metadata', (req, res) => sendJson(res, 200, JSON.stringify(capabilityStatement(fhirBase(req, services.config)))));
  router.use(authenticate(services));

  const caller = (res: Response): Caller => toCaller(authOf(res));
  const typeOf = (req: Request, interaction: Interaction): string => {
    const type = String(req.params.type);
    if (!isSupportedType(type)) throw new FhirError(404, { code: 'not-supported', diagnostics: `Resource type ${type} is not held by this gateway` });
    checkScope(authOf(req.res!), type, interaction);
    return type;
  };
  const base = (req: Request) => fhirBase(req, services.config);

  router.use('/AuditEvent', auditEventRouter(services));

  router.post('/', wrap(async (req, res) => {
    const bundle = await processBundle(fhir, services, caller(res), authOf(res), req.body, base(req));
    sendJson(res, 200, JSON.stringify(bundle));
  }));

  router.get('/_history', wrap(async (req, res) => {
    if (!authOf(res).admin) checkScope(authOf(res), '*', 'history');
    await sendHistory(req, res, {});
  }));

  const search: Handler = async (req, res) => {
    const type = typeOf(req, 'search');
    const query = queryPairs(req);
    const { request, result } = await fhir.search(caller(res), type, query, preferLenient(req));
    sendJson(res, 200, searchsetJson(base(req), request, result, query));
  };
  router.get('/:type', wrap(search));
  router.post('/:type/_search', wrap(search));

  router.post('/:type', wrap(async (req, res) => {
    const type = typeOf(req, 'create');
    sendResult(req, res, await fhir.create(caller(res), req.body, type, req.get('if-none-exist')), services.config, true);
  }));
  router.put('/:type', wrap(async (req, res) => {
    const type = typeOf(req, 'update');
    const result = await fhir.conditionalUpdate(caller(res), type, rawQuery(req), req.body, ifMatch(req));
    sendResult(req, res, result, services.config, true);
  }));
  router.delete('/:type', wrap(async (req, res) => {
    const type = typeOf(req, 'delete');
    sendResult(req, res, await fhir.conditionalDelete(caller(res), type, rawQuery(req)), services.config, true);
  }));
  router.get('/:type/_history', wrap(async (req, res) => {
    await sendHistory(req, res, { resourceType: typeOf(req, 'history') });
  }));
  router.post('/:type/:operation', wrap(async (req, res) => operation(req, res)));

  router.get('/:type/:id', wrap(async (req, res) => {
    if (String(req.params.id).startsWith('$')) throw notSupported(`Operation ${req.params.id} is not supported`, 404);
    sendResult(req, res, await fhir.read(caller(res), typeOf(req, 'read'), String(req.params.id)), services.config);
  }));
  router.put('/:type/:id', wrap(async (req, res) => {
    const type = typeOf(req, 'update');
    const result = await fhir.update(caller(res), type, String(req.params.id), req.body, ifMatch(req));
    sendResult(req, res, result, services.config, true);
  }));
  router.delete('/:type/:id', wrap(async (req, res) => {
    const type = typeOf(req, 'delete');
    sendResult(req, res, await fhir.delete(caller(res), type, String(req.params.id)), services.config, true);
  }));
  router.get('/:type/:id/_history', wrap(async (req, res) => {
    await sendHistory(req, res, { resourceType: typeOf(req, 'history'), id: String(req.params.id) });
  }));
  router.get('/:type/:id/_history/:vid', wrap(async (req, res) => {
    const type = typeOf(req, 'vread');
    sendResult(req, res, await fhir.vread(caller(res), type, String(req.params.id), String(req.params.vid)), services.config);
  }));
  router.post('/:type/:id/:operation', wrap(async (req, res) => operation(req, res)));
  router.get('/:type/:id/:operation', wrap(async (req, res) => {
    const handler = req.params.type === 'Patient' ? patientOps.get[String(req.params.operation)] : undefined;
    if (!handler) throw notSupported(`Operation ${req.params.operation} is not supported on GET`, 404);
    await handler({ req, res, caller: caller(res) });
  }));

  async function sendHistory(req: Request, res: Response, target: { resourceType?: string; id?: string }) {
    const query = historyQuery(target, queryPairs(req));
    const { rows, total } = await fhir.history(caller(res), query);
    const path = [target.resourceType, target.id].filter(Boolean).join('/');
    const self = `${base(req)}/${path ? `${path}/` : ''}_history`;
    const qs = new URLSearchParams(queryPairs(req).filter(([k]) => k !== '_offset'));
    const next = query.offset + query.count < total ? `${self}?${withParam(qs, '_offset', query.offset + query.count)}` : undefined;
    sendJson(res, 200, historyJson(base(req), `${self}${req.url.includes('?') ? req.url.slice(req.url.indexOf('?')) : ''}`, rows, total, next));
  }

  async function operation(req: Request, res: Response) {
    const op = String(req.params.operation);
    const handler = req.params.type === 'Patient' && req.params.id ? patientOps.post[op] : undefined;
    if (handler) return handler({ req, res, caller: caller(res) });
    if (op !== '$validate') throw notSupported(`Operation ${op} is not supported`, 404);
    await validateOperation(fhir, services, req, res, caller(res), typeOf(req, 'operation'));
  }

  return router;
}

function toCaller(auth: AuthContext): Caller {
  return {
    admin: auth.admin, organizationId: auth.organizationId, clientId: auth.clientId, purposeOfUse: auth.purposeOfUse,
    ...(auth.breakGlassReason ? { breakGlassReason: auth.breakGlassReason } : {}),
  };
}

function queryPairs(req: Request): QueryParams {
  const pairs = [...new URLSearchParams(rawQuery(req))] as QueryParams;
  if (req.method === 'POST' && req.is('application/x-www-form-urlencoded') && req.body && typeof req.body === 'object') {
    for (const [k, v] of Object.entries(req.body as Record<string, string | string[]>)) {
      for (const value of Array.isArray(v) ? v : [v]) pairs.push([k, String(value)]);
    }
  }
  return pairs;
}

function rawQuery(req: Request): string {
  const i = req.originalUrl.indexOf('?');
  return i < 0 ? '' : req.originalUrl.slice(i + 1);
}

function ifMatch(req: Request): number | undefined {
  const header = req.get('if-match');
  if (!header) return undefined;
  const version = versionFromEtag(header);
  if (version === undefined) throw new FhirError(400, { code: 'invalid', diagnostics: `If-Match must be an ETag such as W/"3": ${header}` });
  return version;
}

function withParam(params: URLSearchParams, key: string, value: number): string {
  const copy = new URLSearchParams(params);
  copy.set(key, String(value));
  return copy.toString();
}

/** JSON only: an explicit request for XML (Accept or _format) answers 406. */
function negotiateFormat(req: Request, _res: Response, next: NextFunction): void {
  const format = typeof req.query._format === 'string' ? req.query._format : undefined;
  const accept = req.get('accept') ?? '';
  const wantsXmlOnly = (format && /xml/.test(format)) || (/xml/.test(accept) && !/json|\*\/\*/.test(accept));
  if (wantsXmlOnly) return next(new FhirError(406, { code: 'not-supported', diagnostics: 'Only JSON is supported (application/fhir+json)' }));
  const type = req.get('content-type');
  if (['POST', 'PUT', 'PATCH'].includes(req.method) && req.headers['content-length'] !== '0' && type &&
      !/json|x-www-form-urlencoded/.test(type)) {
    return next(new FhirError(415, { code: 'not-supported', diagnostics: `Content-Type ${type} is not supported; send ${FHIR_JSON}` }));
  }
  next();
}
