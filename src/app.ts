import compression from 'compression';
import express, { type ErrorRequestHandler, type RequestHandler } from 'express';
import { authRoutes } from './auth/routes.js';
import { exchangeAdminRoutes } from './exchange/admin-routes.js';
import { fhirRouter } from './fhir/router.js';
import { ingestRoutes } from './ingest/routes.js';
import { FhirError, operationOutcome } from './fhir/outcome.js';
import { log } from './logger.js';
import { isNulRejection, nulRefused, refuseNulInRequestLine } from './nul-characters.js';
import { httpDuration, httpRequests } from './metrics.js';
import { operationsRoutes } from './operations.js';
import type { Services } from './services.js';
import { subscriptionOperations } from './subscriptions/operations.js';

export function createApp(services: Services): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'extended');
  app.use(requestMetrics);
  app.use(compression());
  app.use(refuseNulInRequestLine);

  app.use(operationsRoutes(services));

  app.use(authRoutes(services));
  app.use(exchangeAdminRoutes(services));
  app.use(ingestRoutes(services));
  app.use('/fhir', subscriptionOperations(services));
  app.use('/fhir', fhirRouter(services));
  app.use((req, _res, next) => next(new FhirError(404, { code: 'not-found', diagnostics: `No route for ${req.method} ${req.path}` })));
  app.use(errorHandler);
  return app;
}

const requestMetrics: RequestHandler = (req, res, next) => {
  const end = httpDuration.startTimer();
  res.on('finish', () => {
    const route = routeLabel(req.baseUrl, req.route?.path);
    end({ method: req.method, route });
    httpRequests.inc({ method: req.method, route, status: String(res.statusCode) });
  });
  next();
};

function routeLabel(base: string, path: unknown): string {
  return typeof path === 'string' ? `${base}${path}` : base || 'unmatched';
}

interface BodyParserError extends Error {
  type?: string;
  status?: number;
}

export const errorHandler: ErrorRequestHandler = (err: unknown, req, res, _next) => {
  const error = toFhirError(err as BodyParserError);
  if (error.status >= 500) log.error({ err, method: req.method, path: req.path }, 'request failed');
  if (res.headersSent) return;
  res.status(error.status).set(error.headers).type('application/fhir+json').send(JSON.stringify(error.toOperationOutcome()));
};

export function toFhirError(err: BodyParserError): FhirError {
  if (err instanceof FhirError) return err;
  if (isNulRejection(err)) return nulRefused('request');
  if (err.type === 'entity.too.large')
    return new FhirError(413, { code: 'too-costly', diagnostics: 'Request body is too large / リクエストが大きすぎます' });
  if (err.type === 'entity.parse.failed')
    return new FhirError(400, { code: 'structure', diagnostics: `Request body is not valid JSON / JSONとして解析できません: ${err.message}` });
  if (err.type === 'encoding.unsupported' || err.type === 'charset.unsupported')
    return new FhirError(415, { code: 'not-supported', diagnostics: err.message });
  if (typeof err.status === 'number' && err.status >= 400 && err.status < 500)
    return new FhirError(err.status, { code: 'invalid', diagnostics: err.message });
  return new FhirError(500, { code: 'exception', diagnostics: 'Internal error / 内部エラー' });
}

export { operationOutcome };
