/**
 * SMART on FHIR system scopes, v1 (`system/Patient.read`, `.write`, `.*`) and v2 (`system/Patient.rs`,
 * `.cruds`). Granular v2 scopes with a query (`system/Observation.rs?category=…`) are not supported and
 * are never granted, so they can never widen access.
 */
export type Interaction = 'read' | 'vread' | 'search' | 'history' | 'create' | 'update' | 'delete' | 'operation';

type Permission = 'c' | 'r' | 'u' | 'd' | 's';

export interface Scope {
  /** Resource type, or `*` for all. */
  type: string;
  permissions: ReadonlySet<Permission>;
  /** The scope as granted, for echoing back in token responses. */
  text: string;
}

const SCOPE_PATTERN = /^system\/(\*|[A-Z][A-Za-z]+)\.(read|write|\*|c?r?u?d?s?)$/;

const V1: Record<string, Permission[]> = { read: ['r', 's'], write: ['c', 'u', 'd'], '*': ['c', 'r', 'u', 'd', 's'] };

const NEEDS: Record<Interaction, Permission> = {
  read: 'r', vread: 'r', history: 'r', operation: 'r', search: 's', create: 'c', update: 'u', delete: 'd',
};

export function parseScope(text: string): Scope | undefined {
  const match = SCOPE_PATTERN.exec(text);
  if (!match || match[2] === '') return undefined;
  const permissions = V1[match[2]] ?? [...match[2]];
  return { type: match[1], permissions: new Set(permissions as Permission[]), text };
}

/** Parses a space-separated scope string, keeping only the scopes this gateway understands. */
export function parseScopes(value: string | undefined): Scope[] {
  return (value ?? '').split(/\s+/).filter(Boolean).map(parseScope).filter((s): s is Scope => s !== undefined);
}

export function permits(scopes: readonly Scope[], resourceType: string, interaction: Interaction): boolean {
  const needed = NEEDS[interaction];
  return scopes.some((s) => (s.type === '*' || s.type === resourceType) && s.permissions.has(needed));
}

/** A requested scope is granted when the client's registered scopes cover every permission it asks for. */
export function covers(allowed: readonly Scope[], requested: Scope): boolean {
  return [...requested.permissions].every((p) =>
    allowed.some((a) => (a.type === '*' || a.type === requested.type) && a.permissions.has(p)));
}

export function grantScopes(allowed: readonly Scope[], requested: string | undefined): Scope[] {
  if (requested === undefined || requested.trim() === '') return [...allowed];
  return parseScopes(requested).filter((s) => covers(allowed, s));
}

export const formatScopes = (scopes: readonly Scope[]): string => scopes.map((s) => s.text).join(' ');

export const DEFAULT_CLIENT_SCOPE = 'system/*.cruds';
