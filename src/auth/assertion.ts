import { createLocalJWKSet, createRemoteJWKSet, decodeJwt, errors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import type { Queryable } from '../store/db.js';
import type { Client, ClientRegistry } from './clients.js';

export const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
export const ASSERTION_ALGORITHMS = ['RS384', 'ES384'];
const MAX_ASSERTION_LIFETIME_S = 300;

export class AssertionError extends Error {}

/**
 * SMART Backend Services client authentication: a JWT signed with the client's private key,
 * iss = sub = client_id, aud = the token endpoint, exp at most five minutes ahead, jti never reused.
 */
export class ClientAssertionVerifier {
  private remoteSets = new Map<string, JWTVerifyGetKey>();

  constructor(private readonly db: Queryable, private readonly clients: ClientRegistry) {}

  async verify(assertion: string, tokenEndpoints: string[]): Promise<Client> {
    const client = await this.claimedClient(assertion);
    const keys = this.keySet(client);
    let payload;
    try {
      ({ payload } = await jwtVerify(assertion, keys, {
        issuer: client.id, subject: client.id, audience: tokenEndpoints, algorithms: ASSERTION_ALGORITHMS,
        requiredClaims: ['exp', 'jti'], clockTolerance: 5,
      }));
    } catch (err) {
      if (err instanceof errors.JOSEError) throw new AssertionError(`client_assertion rejected: ${err.message}`);
      throw err;
    }
    const now = Math.floor(Date.now() / 1000);
    if (payload.exp! > now + MAX_ASSERTION_LIFETIME_S + 5) throw new AssertionError('client_assertion exp is more than 5 minutes ahead');
    if (typeof payload.jti !== 'string' || !payload.jti) throw new AssertionError('client_assertion jti missing');
    await this.rememberJti(client.id, payload.jti, payload.exp!);
    return client;
  }

  private async claimedClient(assertion: string): Promise<Client> {
    let iss: unknown;
    try {
      iss = decodeJwt(assertion).iss;
    } catch {
      throw new AssertionError('client_assertion is not a JWT');
    }
    const client = typeof iss === 'string' ? await this.clients.find(iss) : undefined;
    if (!client || client.disabled) throw new AssertionError('client_assertion names no registered client');
    if (!client.jwks && !client.jwksUri) throw new AssertionError('client has no registered public keys');
    return client;
  }

  private keySet(client: Client): JWTVerifyGetKey {
    if (client.jwks) return createLocalJWKSet(client.jwks);
    const uri = client.jwksUri!;
    if (!this.remoteSets.has(uri)) this.remoteSets.set(uri, createRemoteJWKSet(new URL(uri), { timeoutDuration: 5000 }));
    return this.remoteSets.get(uri)!;
  }

  private async rememberJti(clientId: string, jti: string, exp: number): Promise<void> {
    await this.db.query('DELETE FROM client_assertion_jti WHERE expires_at < now() - interval \'1 minute\'');
    const { rowCount } = await this.db.query(
      'INSERT INTO client_assertion_jti (client_id, jti, expires_at) VALUES ($1, $2, to_timestamp($3)) ON CONFLICT DO NOTHING',
      [clientId, jti, exp]);
    if (!rowCount) throw new AssertionError('client_assertion jti was already used');
  }
}
