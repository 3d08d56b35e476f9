import express, { type RequestHandler } from 'express';
import { FhirError } from './fhir/outcome.js';

/**
 * U+0000 is in no FHIR string (string: [ \r\n\t\S]+) and PostgreSQL stores it in neither text nor jsonb.
 * A request carrying one is refused before it reaches the store, whichever of URL, header or body holds it.
 */
export function nulRefused(where: string): FhirError {
  return new FhirError(400, {
    code: 'invalid',
    diagnostics: `The ${where} contains a NUL character (U+0000), which no FHIR string may hold / ${where} に NUL 文字 (U+0000) が含まれています`,
  });
}

/** PostgreSQL's answer to a NUL that still reached it: 22021 in text, 22P05 (\u0000) in jsonb. */
export function isNulRejection(err: unknown): boolean {
  const { code, message } = (err ?? {}) as { code?: unknown; message?: unknown };
  if (code === '22P05') return true;
  return code === '22021' && typeof message === 'string' && message.includes('0x00');
}

const PERCENT_NUL = /%00/i;
/** `\u0000` in JSON text, unless its backslash is itself escaped (`\\u0000` is the six characters). */
const JSON_NUL_ESCAPE = /(?<!\\)(?:\\\\)*\\u0000/;

/** Whether a URL or query string holds a percent-encoded NUL. */
export function hasPercentNul(text: string): boolean {
  return PERCENT_NUL.test(text);
}

/** Whether JSON text holds an escaped U+0000 (raw control characters are not JSON at all). */
export function hasJsonNulEscape(text: string): boolean {
  return text.includes('\\u0000') && JSON_NUL_ESCAPE.test(text);
}

/** URLs and the query a conditional create sends in If-None-Exist. */
export const refuseNulInRequestLine: RequestHandler = (req, _res, next) => {
  if (req.originalUrl.includes('\0') || PERCENT_NUL.test(req.originalUrl)) return next(nulRefused('URL'));
  if (PERCENT_NUL.test(req.get('if-none-exist') ?? '')) return next(nulRefused('If-None-Exist header'));
  next();
};

type JsonOptions = Parameters<typeof express.json>[0];
type FormOptions = Parameters<typeof express.urlencoded>[0];

/** express.json that refuses a body holding U+0000 anywhere (string or key) with 400. */
export function jsonBody(options: JsonOptions): RequestHandler {
  return express.json({
    ...options,
    verify: (_req, _res, buf) => {
      if (buf.includes('\\u0000') && hasJsonNulEscape(buf.toString('utf8'))) throw nulRefused('request body');
    },
  });
}

/** express.urlencoded that refuses a form holding U+0000, raw or percent-encoded, with 400. */
export function formBody(options: FormOptions): RequestHandler {
  return express.urlencoded({
    ...options,
    verify: (_req, _res, buf) => {
      if (buf.includes(0) || PERCENT_NUL.test(buf.toString('latin1'))) throw nulRefused('request body');
    },
  });
}
