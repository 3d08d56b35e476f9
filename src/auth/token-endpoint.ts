import express, { type Request, type Response } from 'express';
import type { Config } from '../config.js';
import { log } from '../logger.js';
import { formBody } from '../nul-characters.js';
import type { Services } from '../services.js';
import { ASSERTION_ALGORITHMS, AssertionError, JWT_BEARER } from './assertion.js';
import type { Client } from './clients.js';
import { grantScopes, parseScopes } from './scopes.js';

class OAuthError extends Error {
  constructor(readonly status: number, readonly code: string, description: string, readonly basicChallenge = false) {
    super(description);
  }
}

/** `/oauth2/token` (client_credentials) and the SMART configuration that advertises it. */
export function tokenRoutes(services: Services): express.Router {
  const router = express.Router();
  router.post('/oauth2/token', formBody({ extended: false, limit: '64kb' }), (req, res) => {
    issueToken(services, req, res).catch((err: unknown) => sendOAuthError(res, err));
  });
  const smart = (req: Request, res: Response) => void res.json(smartConfiguration(tokenEndpoint(req, services.config)));
  router.get('/.well-known/smart-configuration', smart);
  router.get('/fhir/.well-known/smart-configuration', smart);
  return router;
}

async function issueToken(services: Services, req: Request, res: Response): Promise<void> {
  const form = (req.body ?? {}) as Record<string, unknown>;
  if (!req.is('application/x-www-form-urlencoded')) throw new OAuthError(400, 'invalid_request', 'Send application/x-www-form-urlencoded');
  if (form.grant_type !== 'client_credentials') throw new OAuthError(400, 'unsupported_grant_type', 'grant_type must be client_credentials');
  const client = await authenticateClient(services, req, form);
  const granted = grantScopes(parseScopes(client.scope), typeof form.scope === 'string' ? form.scope : undefined);
  if (!granted.length) throw new OAuthError(400, 'invalid_scope', 'None of the requested scopes is allowed for this client');
  const token = await services.auth.tokens.issue({ clientId: client.id, organizationId: client.organizationId, scopes: granted });
  log.info({ clientId: client.id, organization: client.organizationId }, 'access token issued');
  res.set('Cache-Control', 'no-store').set('Pragma', 'no-cache').json({
    access_token: token.accessToken, token_type: 'bearer', expires_in: token.expiresIn, scope: token.scope,
  });
}

async function authenticateClient(services: Services, req: Request, form: Record<string, unknown>): Promise<Client> {
  const basic = basicCredentials(req);
  if (basic && form.client_assertion) throw new OAuthError(400, 'invalid_request', 'Use one client authentication method');
  if (basic) {
    const client = await services.auth.clients.verifySecret(basic.id, basic.secret);
    if (!client) throw new OAuthError(401, 'invalid_client', 'Client authentication failed', true);
    return client;
  }
  if (typeof form.client_assertion === 'string') {
    if (form.client_assertion_type !== JWT_BEARER) throw new OAuthError(400, 'invalid_request', `client_assertion_type must be ${JWT_BEARER}`);
    try {
      return await services.auth.assertions.verify(form.client_assertion, audiences(req, services.config));
    } catch (err) {
      if (err instanceof AssertionError) throw new OAuthError(401, 'invalid_client', err.message);
      throw err;
    }
  }
  throw new OAuthError(401, 'invalid_client', 'Client authentication required (HTTP Basic or client_assertion)', true);
}

function basicCredentials(req: Request): { id: string; secret: string } | undefined {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(req.get('authorization') ?? '');
  if (!match) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  const unescape = (s: string) => { try { return decodeURIComponent(s); } catch { return s; } };
  return { id: unescape(decoded.slice(0, colon)), secret: unescape(decoded.slice(colon + 1)) };
}

function tokenEndpoint(req: Request, config: Config): string {
  return `${config.baseUrl ?? `${req.protocol}://${req.get('host')}`}/oauth2/token`;
}

/** The token endpoint URLs an assertion's aud may name: the configured public one and this request's own. */
function audiences(req: Request, config: Config): string[] {
  return [...new Set([tokenEndpoint(req, config), `${req.protocol}://${req.get('host')}/oauth2/token`])];
}

function smartConfiguration(tokenUrl: string) {
  return {
    token_endpoint: tokenUrl,
    grant_types_supported: ['client_credentials'],
    token_endpoint_auth_methods_supported: ['private_key_jwt', 'client_secret_basic'],
    token_endpoint_auth_signing_alg_values_supported: ASSERTION_ALGORITHMS,
    scopes_supported: ['system/*.read', 'system/*.write', 'system/*.*', 'system/*.rs', 'system/*.cruds'],
    capabilities: ['client-confidential-asymmetric', 'client-confidential-symmetric', 'permission-v1', 'permission-v2'],
  };
}

function sendOAuthError(res: Response, err: unknown): void {
  if (!(err instanceof OAuthError)) {
    log.error({ err }, 'token request failed');
    res.status(500).json({ error: 'server_error', error_description: 'Internal error' });
    return;
  }
  if (err.basicChallenge) res.set('WWW-Authenticate', 'Basic realm="renkei"');
  res.status(err.status).set('Cache-Control', 'no-store').json({ error: err.code, error_description: err.message });
}
