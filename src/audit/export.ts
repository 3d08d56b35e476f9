import type { AuditEvent } from '@medplum/fhirtypes';
import type { Viewer } from '../store/access.js';
import type { Queryable } from '../store/db.js';
import { SqlParams } from '../store/sql.js';
import { auditVisibility } from './query.js';

/** At most this many entries per export; `since` pages through a longer log. */
export const ACCESS_LOG_LIMIT = 10_000;

export interface AccessLogEntry {
  id: string;
  event: AuditEvent;
}

/**
 * A patient's access log (個人情報保護法: who looked at what, when, why, on what basis): the AuditEvents
 * about the patient the viewer may see (its own data and its own actions; everything for the
 * administrator), oldest first.
 */
export async function accessLog(db: Queryable, viewer: Viewer, patientId: string, since?: Date): Promise<AccessLogEntry[]> {
  const params = new SqlParams();
  const where = [auditVisibility(viewer, params), `a.patient_id = ${params.add(patientId)}`];
  if (since) where.push(`a.recorded >= ${params.add(since.toISOString())}`);
  const { rows } = await db.query<{ id: string; json: string }>(
    `SELECT a.id, a.content::text AS json FROM audit_event a WHERE ${where.join(' AND ')}
     ORDER BY a.recorded, a.seq LIMIT ${params.add(ACCESS_LOG_LIMIT)}`,
    params.values,
  );
  return rows.map((r) => ({ id: r.id, event: JSON.parse(r.json) as AuditEvent }));
}

const HEADER = ['日時 recorded', '操作 action', '結果 outcome', '機関 organization', 'クライアント client', '目的 purpose', '対象 resources', '根拠 basis'];

/** The log as CSV (UTF-8 with BOM, so spreadsheet software reads the Japanese headers). */
export function accessLogCsv(entries: AccessLogEntry[]): string {
  const lines = entries.map(({ event }) => {
    const agent = event.agent ?? [];
    const organization = agent.find((a) => a.who?.reference?.startsWith('Organization/'))?.who?.reference ?? agent[0]?.who?.display ?? '';
    const client = agent.find((a) => a.who?.identifier)?.who?.identifier?.value ?? '';
    const purpose = event.purposeOfEvent?.map((p) => [p.coding?.[0]?.code, p.text].filter(Boolean).join(' ')).join(' ') ?? '';
    const entity = event.entity ?? [];
    const isBasis = (e: (typeof entity)[number]) => e.role?.code === '13';
    const resources = entity.filter((e) => !isBasis(e) && e.what?.reference).map((e) => e.what!.reference).join(' ');
    const basis = entity.filter(isBasis).map((e) => e.what?.reference).join(' ');
    const action = event.subtype?.map((s) => s.code).join(' ') ?? event.action ?? '';
    return [event.recorded, action, event.outcome, organization, client, purpose, resources, basis].map(csvField).join(',');
  });
  return `\uFEFF${[HEADER.map(csvField).join(','), ...lines].join('\r\n')}\r\n`;
}

function csvField(value: string | undefined): string {
  const text = value ?? '';
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}
