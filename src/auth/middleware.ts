import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { FhirError, forbidden, unauthorized } from '../fhir/outcome.js';
import type { Services } from '../services.js';
import { ADMIN_AUTH, type AuthContext } from './context.js';
import { InvalidTokenError } from './tokens.js';

/** HL7 v3 PurposeOfUse codes a request may declare in X-Purpose-Of-Use. */
export const PURPOSES_OF_USE = ['TREAT', 'ETREAT', 'HOPERAT', 'CAREMGT', 'PATRQT', 'HPAYMT', 'HRESCH', 'PUBHLTH'];
const DEFAULT_PURPOSE = 'TREAT';

/**
 * Establishes res.locals.auth from `Authorization: Bearer …`: the administrator token, or an access
 * token issued by /oauth2/token to a client that is still enabled. Anything else answers 401.
 */
export function authenticate(services: Services): RequestHandler {
  const adminDigest = services.config.adminToken ? digest(services.config.adminToken) : undefined;
  return (req: Request, res: Response, next: NextFunction) => {
    void (async () => {
      const token = bearerToken(req);
      const purpose = declaredPurpose(req);
      if (adminDigest && timingSafeEqual(digest(token), adminDigest)) {
        res.locals.auth = { ...ADMIN_AUTH, ...(purpose ? { purposeOfUse: purpose } : {}) } satisfies AuthContext;
        return;
      }
      const claims = await services.auth.tokens.verify(token).catch((err: unknown) => {
        if (err instanceof InvalidTokenError) throw invalidToken(err.message);
        throw err;
      });
      if (!(await services.auth.clients.isEnabled(claims.clientId))) throw invalidToken('client is disabled');
      const purposeOfUse = purpose ?? claims.purposeOfUse ?? DEFAULT_PURPOSE;
      res.locals.auth = {
        admin: false,
        clientId: claims.clientId,
        organizationId: claims.organizationId,
        scopes: claims.scopes,
        purposeOfUse,
        ...(purposeOfUse === 'ETREAT' ? { breakGlassReason: breakGlassReason(req) } : {}),
      } satisfies AuthContext;
    })().then(() => next(), next);
  };
}

/** Lets only the administrator through; for /admin routes. */
export function requireAdmin(services: Services): RequestHandler[] {
  return [authenticate(services), (_req, res, next) => next(res.locals.auth?.admin ? undefined : forbidden('Administrator only / 管理者のみ'))];
}

function bearerToken(req: Request): string {
  const header = req.get('authorization');
  if (!header) throw unauthorized();
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match) throw invalidToken('Authorization must be a Bearer token');
  return match[1];
}

function declaredPurpose(req: Request): string | undefined {
  const value = req.get('x-purpose-of-use')?.trim();
  if (!value) return undefined;
  if (!PURPOSES_OF_USE.includes(value)) {
    throw new FhirError(400, { code: 'invalid', diagnostics: `X-Purpose-Of-Use must be one of ${PURPOSES_OF_USE.join(', ')}` });
  }
  return value;
}

/** Break-glass (ETREAT) needs a stated reason, kept in the audit trail and sent to the data owner. */
function breakGlassReason(req: Request): string {
  const raw = req.get('x-break-glass-reason');
  let reason = '';
  try {
    reason = raw ? decodeURIComponent(raw).trim() : '';
  } catch {
    reason = raw?.trim() ?? '';
  }
  if (!reason) {
    throw new FhirError(400, {
      code: 'required',
      diagnostics: 'Emergency access (X-Purpose-Of-Use: ETREAT) needs X-Break-Glass-Reason (URL-encoded text) / 緊急アクセスには理由が必要です',
    });
  }
  return reason.slice(0, 500);
}

function invalidToken(reason: string): FhirError {
  return new FhirError(401, { code: 'login', diagnostics: `Invalid access token (${reason}) / アクセストークンが無効です` },
    { 'WWW-Authenticate': `Bearer error="invalid_token", error_description="${reason}"` });
}

const digest = (value: string) => createHash('sha256').update(value).digest();
