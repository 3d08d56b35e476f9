import express, { type Request } from 'express';
import type { JSONWebKeySet } from 'jose';
import { badRequest, FhirError, notFound } from '../fhir/outcome.js';
import { jsonBody } from '../nul-characters.js';
import type { Services } from '../services.js';
import { ADMIN_VIEWER } from '../store/access.js';
import type { Client, Registration } from './clients.js';
import { requireAdmin } from './middleware.js';
import { DEFAULT_CLIENT_SCOPE, formatScopes, parseScopes } from './scopes.js';

/** `/admin/clients`: the administrator registers, lists and disables the systems that call the gateway. */
export function clientAdminRoutes(services: Services): express.Router {
  const router = express.Router();
  router.use('/admin/clients', requireAdmin(services), jsonBody({ limit: '256kb' }));

  router.post('/admin/clients', async (req, res) => {
    const registration = await parseRegistration(services, req.body);
    const { client, secret } = await services.auth.clients.register(registration);
    res.status(201).location(`/admin/clients/${client.id}`).json({ client_id: client.id, client_secret: secret, ...describe(client) });
  });
  router.get('/admin/clients', async (req, res) => {
    const org = typeof req.query.organization === 'string' ? organizationId(req.query.organization) : undefined;
    res.json((await services.auth.clients.list(org)).map((c) => ({ client_id: c.id, ...describe(c) })));
  });
  router.get('/admin/clients/:id', async (req: Request, res) => {
    const client = await services.auth.clients.find(String(req.params.id));
    if (!client) throw notFound(`Client ${req.params.id} is not registered`);
    res.json({ client_id: client.id, ...describe(client) });
  });
  router.delete('/admin/clients/:id', async (req: Request, res) => {
    const client = await services.auth.clients.find(String(req.params.id));
    if (!client) throw notFound(`Client ${req.params.id} is not registered`);
    await services.auth.clients.disable(client.id);
    res.status(204).end();
  });
  return router;
}

function describe(client: Client) {
  return {
    organization: `Organization/${client.organizationId}`,
    name: client.name,
    scope: client.scope,
    ...(client.jwks ? { jwks: client.jwks } : {}),
    ...(client.jwksUri ? { jwks_uri: client.jwksUri } : {}),
    created: client.created,
    status: client.disabled ? 'disabled' : 'active',
  };
}

async function parseRegistration(services: Services, body: unknown): Promise<Registration> {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw badRequest('Send a JSON object / JSONオブジェクトを送ってください');
  const input = body as Record<string, unknown>;
  if (typeof input.organization !== 'string') throw badRequest('organization ("Organization/<id>") is required', ['organization']);
  const orgId = organizationId(input.organization);
  const org = await services.repo.read('Organization', orgId, ADMIN_VIEWER);
  if (!org || org.deleted) {
    throw new FhirError(422, { code: 'not-found', diagnostics: `Organization/${orgId} does not exist; create it first`, expression: ['organization'] });
  }
  const name = typeof input.name === 'string' && input.name.trim() ? input.name.trim() : undefined;
  if (!name) throw badRequest('name is required', ['name']);
  return { organizationId: orgId, name, scope: registeredScope(input.scope), ...keys(input) };
}

function organizationId(reference: string): string {
  const match = /^Organization\/([A-Za-z0-9\-.]{1,64})$/.exec(reference);
  if (!match) throw badRequest(`organization must be "Organization/<id>", got "${reference}"`, ['organization']);
  return match[1];
}

function registeredScope(value: unknown): string {
  if (value === undefined) return DEFAULT_CLIENT_SCOPE;
  if (typeof value !== 'string') throw badRequest('scope must be a space-separated string', ['scope']);
  const words = value.split(/\s+/).filter(Boolean);
  const scopes = parseScopes(value);
  if (!words.length || scopes.length !== words.length) {
    throw badRequest(`scope must list SMART system scopes such as "system/*.cruds" or "system/Patient.read": "${value}"`, ['scope']);
  }
  return formatScopes(scopes);
}

function keys(input: Record<string, unknown>): { jwks?: JSONWebKeySet; jwksUri?: string } {
  if (input.jwks !== undefined) {
    const jwks = input.jwks as JSONWebKeySet;
    if (!jwks || !Array.isArray(jwks.keys) || !jwks.keys.length || jwks.keys.some((k) => !k || typeof k.kty !== 'string')) {
      throw badRequest('jwks must be a JSON Web Key Set with at least one key', ['jwks']);
    }
    if (jwks.keys.some((k) => 'd' in k)) throw badRequest('jwks must hold public keys only', ['jwks']);
    return { jwks };
  }
  if (input.jwks_uri !== undefined) {
    if (typeof input.jwks_uri !== 'string' || !/^https?:\/\//.test(input.jwks_uri)) throw badRequest('jwks_uri must be an http(s) URL', ['jwks_uri']);
    return { jwksUri: input.jwks_uri };
  }
  return {};
}
