import type { Response } from 'express';
import { forbidden } from '../fhir/outcome.js';
import { permits, type Interaction, type Scope } from './scopes.js';

export type { Interaction } from './scopes.js';

/** Who is calling, established once per request by the authenticate middleware. */
export interface AuthContext {
  admin: boolean;
  clientId?: string;
  /** The Organization the client acts for; every write is owned by it. */
  organizationId?: string;
  scopes: readonly Scope[];
  /** HL7 v3 PurposeOfUse code (TREAT, ETREAT, …) the request is made for. */
  purposeOfUse?: string;
  /** Why emergency access is needed: present exactly when purposeOfUse is ETREAT (break-glass). */
  breakGlassReason?: string;
}

export const ADMIN_AUTH: AuthContext = Object.freeze({ admin: true, scopes: [], purposeOfUse: 'HOPERAT' });

export function authOf(res: Response): AuthContext {
  const auth = res.locals.auth as AuthContext | undefined;
  if (!auth) throw new Error('authOf called on a route without the authenticate middleware');
  return auth;
}

/** Throws 403 unless the caller's scopes allow this interaction on this resource type. */
export function checkScope(auth: AuthContext, resourceType: string, interaction: Interaction): void {
  if (auth.admin || permits(auth.scopes, resourceType, interaction)) return;
  throw forbidden(`Scope does not allow ${interaction} on ${resourceType} / スコープにより${resourceType}の${interaction}は許可されていません`);
}
