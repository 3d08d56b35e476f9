import { newId } from '../store/ids.js';
import type { Communication } from '@medplum/fhirtypes';
import { RENKEI_SYSTEM } from '../audit/events.js';
import type { Caller } from '../fhir/caller.js';
import { prepareVersion } from '../fhir/prepare.js';
import type { StoredResource } from '../store/stored.js';
import type { PreparedWrite } from '../store/write-batch.js';

export const BREAK_GLASS_CATEGORY = `${RENKEI_SYSTEM}/CodeSystem/communication-category`;

/**
 * After an emergency (break-glass) access, one Communication per data owner and patient tells the
 * owner who looked and why. It belongs to the owner, so only the owner (and the administrator) sees it.
 */
export function breakGlassNotices(caller: Caller, disclosed: StoredResource[]): PreparedWrite[] {
  if (!caller.breakGlassReason || !caller.organizationId) return [];
  const pairs = new Map<string, { owner: string; patientId: string; refs: string[] }>();
  for (const row of disclosed) {
    if (!row.owner || !row.patientId || row.owner === caller.organizationId) continue;
    const key = `${row.owner}|${row.patientId}`;
    const pair = pairs.get(key) ?? { owner: row.owner, patientId: row.patientId, refs: [] };
    pair.refs.push(`${row.resourceType}/${row.id}`);
    pairs.set(key, pair);
  }
  return [...pairs.values()].map(({ owner, patientId, refs }) => {
    const notice: Communication = {
      resourceType: 'Communication',
      status: 'completed',
      priority: 'urgent',
      category: [{ coding: [{ system: BREAK_GLASS_CATEGORY, code: 'break-glass', display: '緊急時アクセス' }] }],
      subject: { reference: `Patient/${patientId}` },
      sent: new Date().toISOString(),
      sender: { reference: `Organization/${caller.organizationId}` },
      recipient: [{ reference: `Organization/${owner}` }],
      about: refs.slice(0, 50).map((reference) => ({ reference })),
      payload: [{ contentString: `緊急時アクセス (break-glass) by Organization/${caller.organizationId}: ${caller.breakGlassReason}` }],
    };
    return prepareVersion(notice, { id: newId(), versionId: 1, owner, caller, method: 'POST', replacesIndex: false }).write;
  });
}
