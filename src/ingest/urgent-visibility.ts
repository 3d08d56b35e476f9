import type { Issue } from '../fhir/outcome.js';
import { log } from '../logger.js';
import type { MappedResource } from '../mapping/engine.js';
import { DEFAULT_PURPOSE, visibilitySql } from '../store/access.js';
import type { Queryable } from '../store/db.js';
import { SqlParams } from '../store/sql.js';
import type { StoredRows } from './table-intake.js';

/**
 * An urgent (急変) Communication belongs to the facility that wrote it, like the records it is about: the
 * 協力医療機関 it is addressed to reads it only while the resident's Consent opens Communication to that
 * Organization (or by break-glass). After a file is stored, each urgent Communication is checked against
 * the very condition every read applies; a recipient that cannot see it yet is reported to the sender as
 * a warning naming the row, so the facility knows to record the Consent or to phone.
 */

/** The recipients (Organization ids) that may not see the stored Communication now, for normal care. */
async function blindRecipients(tx: Queryable, id: string, recipients: string[]): Promise<string[]> {
  const blind: string[] = [];
  for (const organizationId of recipients) {
    const params = new SqlParams();
    const visible = visibilitySql({ admin: false, organizationId, purposeOfUse: DEFAULT_PURPOSE }, 'r', params);
    const { rows } = await tx.query<{ visible: boolean }>(
      `SELECT ${visible} AS visible FROM resource r WHERE r.resource_type = 'Communication' AND r.id = ${params.add(id)} AND NOT r.deleted`,
      params.values,
    );
    if (rows[0] && !rows[0].visible) blind.push(organizationId);
  }
  return blind;
}

const isUrgent = (m: MappedResource) => m.resourceType === 'Communication' && m.resource.priority === 'stat';

const recipientsOf = (m: MappedResource) => ((m.resource.recipient ?? []) as { reference?: string }[])
  .map((r) => /^Organization\/([A-Za-z0-9\-.]{1,64})$/.exec(r.reference ?? '')?.[1])
  .filter((id): id is string => Boolean(id));

export async function unseenUrgentCommunications(tx: Queryable, stored: StoredRows, messageId?: number): Promise<Issue[]> {
  const issues: Issue[] = [];
  let unseen = 0;
  for (const m of stored.resources.filter(isUrgent)) {
    const blind = await blindRecipients(tx, m.id, recipientsOf(m));
    if (!blind.length) continue;
    unseen++;
    const lines = stored.linesOf(`Communication/${m.id}`);
    const at = lines.length ? `line ${lines.join(', ')}` : undefined;
    const who = blind.map((id) => `Organization/${id}`).join(', ');
    issues.push({
      severity: 'warning', code: 'suppressed',
      diagnostics: `${at ? `${at}: ` : ''}the urgent Communication (急変) is stored, but the 協力医療機関 ${who} cannot see it until the resident's Consent opens Communication to it (or by break-glass) / `
        + `急変の連絡は保存されましたが、利用者の同意で Communication が開示されていないため、協力医療機関 ${who} はまだ閲覧できません（緊急時アクセスを除く）`,
      ...(at ? { expression: [at] } : {}),
    });
  }
  if (unseen) log.info({ messageId, urgentCommunications: unseen }, 'urgent communications stored that a recipient cannot see without Consent');
  return issues;
}
