import type { AuditRow } from '../store/write-batch.js';
import { auditRow, type AuditActor } from './events.js';

export interface Disclosure {
  resourceType: string;
  id: string;
  owner: string;
  patientId: string;
  /** `Consent/<id>` or `OrganizationAffiliation/<id>`: what permitted it. */
  basis?: string;
}

const MAX_ENTITIES = 100;

/**
 * One AuditEvent (subtype disclose) per data owner and patient whose data a search, history or
 * $everything showed to another Organization: the owner finds it with AuditEvent?patient=…, with the
 * resources shown and the Consents (or agreement) that permitted it.
 */
export function disclosureRows(actor: AuditActor, disclosed: Disclosure[], recorded = new Date()): AuditRow[] {
  const groups = new Map<string, Disclosure[]>();
  for (const d of disclosed) {
    const key = `${d.owner}\n${d.patientId}`;
    groups.set(key, [...(groups.get(key) ?? []), d]);
  }
  return [...groups.values()].map((group) => auditRow({
    interaction: 'disclose',
    actor,
    owner: group[0].owner,
    patientId: group[0].patientId,
    entities: [...new Set(group.map((d) => `${d.resourceType}/${d.id}`))].slice(0, MAX_ENTITIES),
    basis: [...new Set(group.map((d) => d.basis).filter((b): b is string => Boolean(b)))],
    recorded,
  }));
}
