import type { Config } from '../config.js';
import type { Database } from '../store/db.js';
import { ClientAssertionVerifier } from './assertion.js';
import { ClientRegistry } from './clients.js';
import { TokenIssuer } from './tokens.js';

/** The parts that identify callers: the client registry, the token issuer and the assertion verifier. */
export interface AuthServices {
  clients: ClientRegistry;
  tokens: TokenIssuer;
  assertions: ClientAssertionVerifier;
}

export function buildAuthServices(db: Database, config: Config): AuthServices {
  const clients = new ClientRegistry(db);
  return {
    clients,
    tokens: new TokenIssuer(db, config.tokenLifetimeSeconds),
    assertions: new ClientAssertionVerifier(db, clients),
  };
}
