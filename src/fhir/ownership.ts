import type { Meta, Resource } from '@medplum/fhirtypes';
import { RENKEI_SYSTEM } from '../audit/events.js';

/** meta.tag system naming the Organization that owns (wrote) a resource; stamped by the gateway only. */
export const OWNER_TAG_SYSTEM = `${RENKEI_SYSTEM}/CodeSystem/data-owner`;

/** Replaces whatever owner tag a client sent with the real owner (or none for gateway directory data). */
export function stampOwner(meta: Meta, owner: string | null): Meta {
  const tags = (meta.tag ?? []).filter((t) => t.system !== OWNER_TAG_SYSTEM);
  if (owner) tags.push({ system: OWNER_TAG_SYSTEM, code: `Organization/${owner}` });
  const stamped: Meta = { ...meta, tag: tags };
  if (!tags.length) delete stamped.tag;
  return stamped;
}

export function ownerOf(resource: Resource): string | undefined {
  const code = resource.meta?.tag?.find((t) => t.system === OWNER_TAG_SYSTEM)?.code;
  return code?.replace(/^Organization\//, '');
}
