import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendAudit, type AuditRow } from '../../src/store/write-batch.js';
import { stackName, startTestStack, type TestStack } from '../support/stack.js';

/** AuditEvent contents travel beside their rows as one run of bytes: each must come back exactly as sent. */
describe(`audit rows (${stackName})`, () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const row = (id: string, content: object): AuditRow => ({
    id, recorded: new Date('2026-11-27T12:00:00.123Z'), action: 'R', outcome: '0', agentOrg: 'org-a', agentClient: null,
    owner: 'org-b', patientId: 'p-1', entity: ['Patient/p-1', 'Observation/o-1'], purpose: 'TREAT',
    json: JSON.stringify({ resourceType: 'AuditEvent', id, ...content }),
  });

  it('stores multi-byte, escaped and empty-ish contents side by side, each as sent', async () => {
    const rows = [
      row('audit-rows-1', { outcome: '介護記録 ﾃｽﾄ 髙橋 𠮷野家 🏥' }),
      row('audit-rows-2', { text: 'quote " backslash \\ newline \n tab \t \u0000 end' }),
      row('audit-rows-3', {}),
      row('audit-rows-4', { entity: Array.from({ length: 50 }, (_, i) => ({ what: { display: `通知 ${i}` } })) }),
    ];
    await appendAudit(stack.gateway.services.db, rows);
    const { rows: stored } = await stack.gateway.services.db.query<{ id: string; content: string; entity: string[]; patient_id: string }>(
      'SELECT id, content::text AS content, entity, patient_id FROM audit_event WHERE id = ANY($1::text[]) ORDER BY id', [rows.map((r) => r.id)]);
    expect(stored.map((s) => s.id)).toEqual(rows.map((r) => r.id));
    stored.forEach((s, i) => {
      expect(s.content).toBe(rows[i].json);
      expect(s.entity).toEqual(rows[i].entity);
      expect(s.patient_id).toBe('p-1');
    });
  });

  it('refuses a content that is not JSON and stores none of the batch', async () => {
    const good = row('audit-rows-5', { ok: true });
    const bad = { ...row('audit-rows-6', {}), json: '{"resourceType": "AuditEvent",' };
    await expect(appendAudit(stack.gateway.services.db, [good, bad])).rejects.toThrow();
    const { rows } = await stack.gateway.services.db.query('SELECT 1 FROM audit_event WHERE id = ANY($1::text[])', [['audit-rows-5', 'audit-rows-6']]);
    expect(rows).toHaveLength(0);
  });
});
