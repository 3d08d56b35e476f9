import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient } from '../support/fhir-client.js';
import { ADMIN_TOKEN, stackName, startTestStack, type TestStack } from '../support/stack.js';

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

describe(`clients and tokens (${stackName})`, () => {
  let stack: TestStack;
  let tokenUrl: string;

  const register = (body: unknown) => fetch(`${stack.url}/admin/clients`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const tokenRequest = (form: Record<string, string>, headers: Record<string, string> = {}) => fetch(tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(form).toString(),
  });
  const basic = (id: string, secret: string) => ({ authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` });

  async function keyPair(alg: 'RS384' | 'ES384') {
    const { privateKey, publicKey } = await generateKeyPair(alg);
    const jwk: JWK = { ...(await exportJWK(publicKey)), alg, kid: randomUUID(), use: 'sig' };
    return { privateKey, jwk };
  }
  const assertion = (clientId: string, key: Parameters<SignJWT["sign"]>[0], alg: string, kid: string, claims: { exp?: number; aud?: string; jti?: string } = {}) =>
    new SignJWT({})
      .setProtectedHeader({ alg, kid, typ: 'JWT' })
      .setIssuer(clientId).setSubject(clientId)
      .setAudience(claims.aud ?? tokenUrl)
      .setJti(claims.jti ?? randomUUID())
      .setExpirationTime(claims.exp ?? Math.floor(Date.now() / 1000) + 240)
      .sign(key);

  beforeAll(async () => {
    stack = await startTestStack();
    tokenUrl = `${stack.url}/oauth2/token`;
    for (const id of ['tok-clinic', 'tok-facility']) {
      await adminClient(stack).put(`Organization/${id}`, { resourceType: 'Organization', id, name: `機関 ${id}` });
    }
  });
  afterAll(() => stack?.stop());

  it('registers a client for an existing Organization and refuses bad registrations', async () => {
    const ok = await register({ organization: 'Organization/tok-clinic', name: '電子カルテ' });
    expect(ok.status).toBe(201);
    const body = (await ok.json()) as Record<string, string>;
    expect(body.client_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(body.client_secret.length).toBeGreaterThanOrEqual(40);
    expect(body.scope).toBe('system/*.cruds');
    expect((await register({ organization: 'Organization/missing', name: 'x' })).status).toBe(422);
    expect((await register({ organization: 'tok-clinic', name: 'x' })).status).toBe(400);
    expect((await register({ organization: 'Organization/tok-clinic' })).status).toBe(400);
    expect((await register({ organization: 'Organization/tok-clinic', name: 'x', scope: 'patient/*.read' })).status).toBe(400);
    const privateJwks = { keys: [{ kty: 'EC', crv: 'P-384', x: 'a', y: 'b', d: 'secret' }] };
    expect((await register({ organization: 'Organization/tok-clinic', name: 'x', jwks: privateJwks })).status).toBe(400);
  });

  it('only the administrator manages clients', async () => {
    const anonymous = await fetch(`${stack.url}/admin/clients`);
    expect(anonymous.status).toBe(401);
    const { client_id, client_secret } = (await (await register({ organization: 'Organization/tok-clinic', name: 'a' })).json()) as Record<string, string>;
    const token = (await (await tokenRequest({ grant_type: 'client_credentials' }, basic(client_id, client_secret))).json()) as Record<string, string>;
    const asClient = await fetch(`${stack.url}/admin/clients`, { headers: { authorization: `Bearer ${token.access_token}` } });
    expect(asClient.status).toBe(403);
    expect(((await asClient.json()) as { resourceType: string }).resourceType).toBe('OperationOutcome');
  });

  it('issues a bearer token for client_secret_basic and refuses a wrong secret', async () => {
    const { client_id, client_secret } = (await (await register({ organization: 'Organization/tok-clinic', name: 'b' })).json()) as Record<string, string>;
    const res = await tokenRequest({ grant_type: 'client_credentials' }, basic(client_id, client_secret));
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const token = (await res.json()) as Record<string, unknown>;
    expect(token).toMatchObject({ token_type: 'bearer', scope: 'system/*.cruds' });
    expect(token.expires_in).toBeLessThanOrEqual(300);
    const wrong = await tokenRequest({ grant_type: 'client_credentials' }, basic(client_id, 'not-the-secret'));
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toContain('Basic');
    expect(await wrong.json()).toMatchObject({ error: 'invalid_client' });
    const unknown = await tokenRequest({ grant_type: 'client_credentials' }, basic(randomUUID(), client_secret));
    expect(unknown.status).toBe(401);
    expect(await (await tokenRequest({ grant_type: 'password' }, basic(client_id, client_secret))).json()).toMatchObject({ error: 'unsupported_grant_type' });
    expect((await tokenRequest({ grant_type: 'client_credentials' })).status).toBe(401);
  });

  for (const alg of ['RS384', 'ES384'] as const) {
    it(`accepts a private_key_jwt assertion signed ${alg} and refuses a replayed jti`, async () => {
      const { privateKey, jwk } = await keyPair(alg);
      const { client_id } = (await (await register({ organization: 'Organization/tok-facility', name: alg, jwks: { keys: [jwk] } })).json()) as Record<string, string>;
      const jti = randomUUID();
      const signed = await assertion(client_id, privateKey, alg, jwk.kid!, { jti });
      const form = { grant_type: 'client_credentials', client_assertion_type: JWT_BEARER, client_assertion: signed, scope: 'system/Patient.rs' };
      const first = await tokenRequest(form);
      expect(first.status).toBe(200);
      expect(await first.json()).toMatchObject({ scope: 'system/Patient.rs' });
      const replay = await tokenRequest(form);
      expect(replay.status).toBe(401);
      expect(((await replay.json()) as { error_description: string }).error_description).toContain('jti');
    });
  }

  it('refuses assertions with a far expiry, a wrong audience, a foreign key or a weak algorithm', async () => {
    const { privateKey, jwk } = await keyPair('ES384');
    const { client_id } = (await (await register({ organization: 'Organization/tok-facility', name: 'c', jwks: { keys: [jwk] } })).json()) as Record<string, string>;
    const send = async (signed: string) => (await tokenRequest({ grant_type: 'client_credentials', client_assertion_type: JWT_BEARER, client_assertion: signed })).status;
    expect(await send(await assertion(client_id, privateKey, 'ES384', jwk.kid!, { exp: Math.floor(Date.now() / 1000) + 3600 }))).toBe(401);
    expect(await send(await assertion(client_id, privateKey, 'ES384', jwk.kid!, { aud: 'https://elsewhere.example/token' }))).toBe(401);
    expect(await send(await assertion(client_id, privateKey, 'ES384', jwk.kid!, { exp: Math.floor(Date.now() / 1000) - 60 }))).toBe(401);
    const other = await keyPair('ES384');
    expect(await send(await assertion(client_id, other.privateKey, 'ES384', jwk.kid!))).toBe(401);
    const { privateKey: es256 } = await generateKeyPair('ES256');
    expect(await send(await assertion(client_id, es256, 'ES256', jwk.kid!))).toBe(401);
    expect(await send('not.a.jwt')).toBe(401);
    const wrongType = await tokenRequest({ grant_type: 'client_credentials', client_assertion_type: 'x', client_assertion: 'y' });
    expect(await wrongType.json()).toMatchObject({ error: 'invalid_request' });
  });

  it('fetches the client keys from jwks_uri', async () => {
    const { privateKey, jwk } = await keyPair('RS384');
    const keyServer = http.createServer((_req, res) => res.setHeader('content-type', 'application/json').end(JSON.stringify({ keys: [jwk] })));
    await new Promise<void>((resolve) => keyServer.listen(0, '127.0.0.1', resolve));
    try {
      const jwksUri = `http://127.0.0.1:${(keyServer.address() as AddressInfo).port}/jwks.json`;
      const { client_id } = (await (await register({ organization: 'Organization/tok-facility', name: 'd', jwks_uri: jwksUri })).json()) as Record<string, string>;
      const signed = await assertion(client_id, privateKey, 'RS384', jwk.kid!);
      const res = await tokenRequest({ grant_type: 'client_credentials', client_assertion_type: JWT_BEARER, client_assertion: signed });
      expect(res.status).toBe(200);
    } finally {
      keyServer.close();
    }
  });

  it('grants only requested scopes the registration covers', async () => {
    const { client_id, client_secret } = (await (await register({
      organization: 'Organization/tok-clinic', name: 'e', scope: 'system/Patient.read system/Observation.cruds',
    })).json()) as Record<string, string>;
    const grant = async (scope: string) => tokenRequest({ grant_type: 'client_credentials', scope }, basic(client_id, client_secret));
    expect(await (await grant('system/Patient.rs system/Observation.c')).json()).toMatchObject({ scope: 'system/Patient.rs system/Observation.c' });
    expect(await (await grant('system/Patient.rs system/Patient.c')).json()).toMatchObject({ scope: 'system/Patient.rs' });
    const refused = await grant('system/Consent.cruds');
    expect(refused.status).toBe(400);
    expect(await refused.json()).toMatchObject({ error: 'invalid_scope' });
  });

  it('a disabled client gets no token and its tokens stop working', async () => {
    const { client_id, client_secret } = (await (await register({ organization: 'Organization/tok-clinic', name: 'f' })).json()) as Record<string, string>;
    const { access_token } = (await (await tokenRequest({ grant_type: 'client_credentials' }, basic(client_id, client_secret))).json()) as Record<string, string>;
    const read = () => fetch(`${stack.url}/fhir/Patient`, { headers: { authorization: `Bearer ${access_token}` } });
    expect((await read()).status).toBe(200);
    const del = await fetch(`${stack.url}/admin/clients/${client_id}`, { method: 'DELETE', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(del.status).toBe(204);
    expect((await read()).status).toBe(401);
    expect((await tokenRequest({ grant_type: 'client_credentials' }, basic(client_id, client_secret))).status).toBe(401);
    const listed = (await (await fetch(`${stack.url}/admin/clients/${client_id}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json()) as Record<string, string>;
    expect(listed.status).toBe('disabled');
  });

  it('rejects forged, expired-looking and foreign tokens with 401 and a Bearer challenge', async () => {
    const { client_id, client_secret } = (await (await register({ organization: 'Organization/tok-clinic', name: 'g' })).json()) as Record<string, string>;
    const { access_token } = (await (await tokenRequest({ grant_type: 'client_credentials' }, basic(client_id, client_secret))).json()) as Record<string, string>;
    const [header, payload, signature] = access_token.split('.');
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    const forgedPayload = Buffer.from(JSON.stringify({ ...claims, org: 'tok-facility' })).toString('base64url');
    const foreign = await new SignJWT({ org: 'tok-clinic', scope: 'system/*.cruds' })
      .setProtectedHeader({ alg: 'HS256', kid: JSON.parse(Buffer.from(header, 'base64url').toString()).kid, typ: 'at+jwt' })
      .setIssuer('renkei').setAudience('renkei-fhir').setSubject(client_id).setExpirationTime('1m')
      .sign(new TextEncoder().encode('a guessed secret of thirty-two bytes!'));
    for (const token of [`${header}.${forgedPayload}.${signature}`, foreign, 'garbage']) {
      const res = await fetch(`${stack.url}/fhir/Patient`, { headers: { authorization: `Bearer ${token}` } });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toContain('invalid_token');
    }
    const basicOnFhir = await fetch(`${stack.url}/fhir/Patient`, { headers: basic(client_id, client_secret) });
    expect(basicOnFhir.status).toBe(401);
  });

  it('publishes its SMART configuration', async () => {
    const res = await fetch(`${stack.url}/fhir/.well-known/smart-configuration`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      token_endpoint: tokenUrl,
      token_endpoint_auth_methods_supported: expect.arrayContaining(['private_key_jwt', 'client_secret_basic']),
      token_endpoint_auth_signing_alg_values_supported: ['RS384', 'ES384'],
    });
  });
});
