import { randomBytes, randomUUID } from 'node:crypto';
import { errors, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import type { Queryable } from '../store/db.js';
import { formatScopes, parseScopes, type Scope } from './scopes.js';

const ISSUER = 'renkei';
const AUDIENCE = 'renkei-fhir';

export interface AccessTokenClaims {
  clientId: string;
  organizationId: string;
  scopes: Scope[];
  purposeOfUse?: string;
}

export interface IssuedToken {
  accessToken: string;
  expiresIn: number;
  scope: string;
}

export class InvalidTokenError extends Error {}

/**
 * Access tokens are short-lived JWTs (HS256) signed with a gateway key kept in the store, so every
 * gateway process behind one database accepts every other's tokens.
 */
const VERIFIED_CACHE_SIZE = 10_000;

export class TokenIssuer {
  private keys = new Map<string, Uint8Array>();
  private currentKid?: string;
  /** Tokens already verified, until they expire: a client reuses its token for every request. */
  private verified = new Map<string, { claims: AccessTokenClaims; expiresAt: number }>();

  constructor(private readonly db: Queryable, private readonly lifetimeSeconds: number) {}

  async issue(claims: AccessTokenClaims): Promise<IssuedToken> {
    const kid = await this.signingKid();
    const scope = formatScopes(claims.scopes);
    const accessToken = await new SignJWT({
      org: claims.organizationId,
      scope,
      ...(claims.purposeOfUse ? { purpose_of_use: claims.purposeOfUse } : {}),
    })
      .setProtectedHeader({ alg: 'HS256', kid, typ: 'at+jwt' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject(claims.clientId)
      .setJti(randomUUID())
      .setIssuedAt()
      .setExpirationTime(`${this.lifetimeSeconds}s`)
      .sign(this.keys.get(kid)!);
    return { accessToken, expiresIn: this.lifetimeSeconds, scope };
  }

  async verify(token: string): Promise<AccessTokenClaims> {
    const known = this.verified.get(token);
    if (known && known.expiresAt > Date.now()) return known.claims;
    if (known) this.verified.delete(token);
    try {
      const { payload } = await jwtVerify(token, async (header) => this.key(header.kid), {
        issuer: ISSUER, audience: AUDIENCE, algorithms: ['HS256'], typ: 'at+jwt',
      });
      const claims = toClaims(payload);
      this.remember(token, claims, payload.exp! * 1000);
      return claims;
    } catch (err) {
      if (err instanceof errors.JOSEError || err instanceof InvalidTokenError) {
        throw new InvalidTokenError(err instanceof errors.JWTExpired ? 'token expired' : 'token invalid');
      }
      throw err;
    }
  }

  private remember(token: string, claims: AccessTokenClaims, expiresAt: number): void {
    if (this.verified.size >= VERIFIED_CACHE_SIZE) {
      const now = Date.now();
      for (const [t, v] of this.verified) if (v.expiresAt <= now) this.verified.delete(t);
      if (this.verified.size >= VERIFIED_CACHE_SIZE) this.verified.delete(this.verified.keys().next().value!);
    }
    this.verified.set(token, { claims, expiresAt });
  }

  private async key(kid: string | undefined): Promise<Uint8Array> {
    if (!kid) throw new InvalidTokenError('token has no key id');
    if (!this.keys.has(kid)) {
      const { rows } = await this.db.query<{ secret: Buffer }>('SELECT secret FROM token_key WHERE kid = $1', [kid]);
      if (!rows[0]) throw new InvalidTokenError('unknown key');
      this.keys.set(kid, new Uint8Array(rows[0].secret));
    }
    return this.keys.get(kid)!;
  }

  private async signingKid(): Promise<string> {
    if (this.currentKid) return this.currentKid;
    await this.db.query('INSERT INTO token_key (kid, secret) SELECT $1, $2 WHERE NOT EXISTS (SELECT 1 FROM token_key)',
      [randomUUID(), randomBytes(32)]);
    const { rows } = await this.db.query<{ kid: string; secret: Buffer }>(
      'SELECT kid, secret FROM token_key ORDER BY created DESC, kid LIMIT 1');
    this.keys.set(rows[0].kid, new Uint8Array(rows[0].secret));
    this.currentKid = rows[0].kid;
    return this.currentKid;
  }
}

function toClaims(payload: JWTPayload): AccessTokenClaims {
  if (typeof payload.sub !== 'string' || typeof payload.org !== 'string' || typeof payload.scope !== 'string') {
    throw new InvalidTokenError('token claims incomplete');
  }
  return {
    clientId: payload.sub,
    organizationId: payload.org,
    scopes: parseScopes(payload.scope),
    ...(typeof payload.purpose_of_use === 'string' ? { purposeOfUse: payload.purpose_of_use } : {}),
  };
}
