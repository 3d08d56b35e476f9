import type { Request, Response } from 'express';
import type { Config } from '../config.js';
import { informationOutcome } from './outcome.js';
import { etagOf, type FhirResult } from './results.js';

export const FHIR_JSON = 'application/fhir+json; charset=utf-8';

/** The FHIR base URL as the client sees it: RENKEI_BASE_URL, or this request's own scheme and host. */
export function fhirBase(req: Request, config: Config): string {
  return config.baseUrl ? `${config.baseUrl}/fhir` : `${req.protocol}://${req.get('host')}/fhir`;
}

type PreferReturn = 'minimal' | 'representation' | 'OperationOutcome';

export function preferReturn(req: Request): PreferReturn {
  const m = /return=(minimal|representation|OperationOutcome)/.exec(req.get('prefer') ?? '');
  return (m?.[1] as PreferReturn) ?? 'representation';
}

export function preferLenient(req: Request): boolean {
  return /handling=lenient/.test(req.get('prefer') ?? '');
}

/** Writes an interaction's result as HTTP, honouring Prefer: return=… for writes. */
export function sendResult(req: Request, res: Response, result: FhirResult, config: Config, isWrite = false): void {
  if (result.versionId) res.set('ETag', etagOf(result.versionId));
  if (result.lastUpdated) res.set('Last-Modified', result.lastUpdated.toUTCString());
  if (result.location) res.set('Location', `${fhirBase(req, config)}/${result.location}`);
  res.status(result.status);
  const prefer = isWrite ? preferReturn(req) : 'representation';
  if (result.status === 204 || prefer === 'minimal' || result.body === undefined) {
    if (result.status === 204 || prefer === 'minimal') return void res.end();
    return void res.type(FHIR_JSON).send(JSON.stringify(informationOutcome('Done / 完了しました')));
  }
  if (prefer === 'OperationOutcome') {
    return void res.type(FHIR_JSON).send(JSON.stringify(informationOutcome(`Done: HTTP ${result.status}`)));
  }
  res.type(FHIR_JSON).send(typeof result.body === 'string' ? result.body : JSON.stringify(result.body));
}

export function sendJson(res: Response, status: number, json: string): void {
  res.status(status).type(FHIR_JSON).send(json);
}
