import type { AuditActor } from '../audit/events.js';
import type { Viewer } from '../store/access.js';

/** The party a FHIR interaction is performed for: what it may see (Viewer) and who it is for the audit trail. */
export interface Caller extends Viewer, AuditActor {
  admin: boolean;
  organizationId?: string;
  clientId?: string;
  purposeOfUse?: string;
}
