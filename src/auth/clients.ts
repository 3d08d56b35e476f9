import { randomBytes, randomUUID, scrypt as scryptCb, timingSafeEqual, type BinaryLike } from 'node:crypto';
import { promisify } from 'node:util';
import type { JSONWebKeySet } from 'jose';
import type { Queryable } from '../store/db.js';

const scrypt = promisify(scryptCb) as (password: BinaryLike, salt: BinaryLike, keylen: number) => Promise<Buffer>;

export interface Client {
  id: string;
  organizationId: string;
  name: string;
  jwks?: JSONWebKeySet;
  jwksUri?: string;
  scope: string;
  created: string;
  disabled: boolean;
}

export interface Registration {
  organizationId: string;
  name: string;
  jwks?: JSONWebKeySet;
  jwksUri?: string;
  scope: string;
}

interface ClientRow {
  id: string;
  organization_id: string;
  name: string;
  secret_hash: string;
  jwks: JSONWebKeySet | null;
  jwks_uri: string | null;
  scope: string;
  created: Date;
  disabled_at: Date | null;
}

/** The registry of clients: registration, lookup, secret verification and disabling. */
const STATUS_TTL_MS = 10_000;

export class ClientRegistry {
  /** Whether each client is enabled, as last read; another gateway process sees a disable within the TTL. */
  private status = new Map<string, { enabled: boolean; checked: number }>();

  constructor(private readonly db: Queryable) {}

  async isEnabled(id: string): Promise<boolean> {
    const cached = this.status.get(id);
    if (cached && Date.now() - cached.checked < STATUS_TTL_MS) return cached.enabled;
    const client = await this.find(id);
    const enabled = Boolean(client && !client.disabled);
    this.status.set(id, { enabled, checked: Date.now() });
    return enabled;
  }

  async register(registration: Registration): Promise<{ client: Client; secret: string }> {
    const id = randomUUID();
    const secret = randomBytes(32).toString('base64url');
    const { rows } = await this.db.query<ClientRow>(
      `INSERT INTO client (id, organization_id, name, secret_hash, jwks, jwks_uri, scope)
       VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *`,
      [id, registration.organizationId, registration.name, await hashSecret(secret),
        registration.jwks ? JSON.stringify(registration.jwks) : null, registration.jwksUri ?? null, registration.scope],
    );
    return { client: toClient(rows[0]), secret };
  }

  async find(id: string): Promise<Client | undefined> {
    const row = await this.findRow(id);
    return row && toClient(row);
  }

  async list(organizationId?: string): Promise<Client[]> {
    const { rows } = await this.db.query<ClientRow>(
      'SELECT * FROM client WHERE ($1::text IS NULL OR organization_id = $1) ORDER BY created, id', [organizationId ?? null]);
    return rows.map(toClient);
  }

  async disable(id: string): Promise<boolean> {
    const { rowCount } = await this.db.query('UPDATE client SET disabled_at = now() WHERE id = $1 AND disabled_at IS NULL', [id]);
    this.status.set(id, { enabled: false, checked: Date.now() });
    return (rowCount ?? 0) > 0;
  }

  /** The enabled client whose secret this is, or undefined (same answer for unknown id and wrong secret). */
  async verifySecret(id: string, secret: string): Promise<Client | undefined> {
    const row = await this.findRow(id);
    const ok = await verifySecret(secret, row?.secret_hash ?? DUMMY_HASH);
    return row && ok && !row.disabled_at ? toClient(row) : undefined;
  }

  private async findRow(id: string): Promise<ClientRow | undefined> {
    const { rows } = await this.db.query<ClientRow>('SELECT * FROM client WHERE id = $1', [id]);
    return rows[0];
  }
}

function toClient(row: ClientRow): Client {
  return {
    id: row.id,
    organizationId: row.organization_id,
    name: row.name,
    ...(row.jwks ? { jwks: row.jwks } : {}),
    ...(row.jwks_uri ? { jwksUri: row.jwks_uri } : {}),
    scope: row.scope,
    created: row.created.toISOString(),
    disabled: row.disabled_at !== null,
  };
}

async function hashSecret(secret: string): Promise<string> {
  const salt = randomBytes(16);
  const hash = await scrypt(secret, salt, 32);
  return `scrypt$${salt.toString('base64url')}$${hash.toString('base64url')}`;
}

// Verified against when the client id is unknown, so both failures take the same time.
const DUMMY_HASH = `scrypt$${Buffer.alloc(16).toString('base64url')}$${Buffer.alloc(32).toString('base64url')}`;

async function verifySecret(secret: string, stored: string): Promise<boolean> {
  const [, salt, hash] = stored.split('$');
  const expected = Buffer.from(hash, 'base64url');
  const actual = await scrypt(secret, Buffer.from(salt, 'base64url'), expected.length);
  return timingSafeEqual(actual, expected);
}
