import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient, organizationClient, type FhirClient } from '../support/fhir-client.js';
import { patient } from '../support/resources.js';
import { stackName, startTestStack, type TestStack } from '../support/stack.js';

describe(`hash-chained audit trail (${stackName})`, () => {
  let stack: TestStack;
  let clinic: FhirClient;
  const verify = async () => {
    const res = await adminClient(stack).get('AuditEvent/$verify');
    expect(res.status).toBe(200);
    const param = (name: string) => res.body.parameter.find((p: any) => p.name === name);
    const broken = param('firstBroken')?.part;
    return {
      intact: param('intact').valueBoolean as boolean,
      checked: param('checked').valueInteger as number,
      position: broken?.find((p: any) => p.name === 'position').valueInteger as number | undefined,
      reason: broken?.find((p: any) => p.name === 'reason').valueString as string | undefined,
    };
  };
  const sql = (text: string, values: unknown[] = []) => stack.gateway.services.db.query(text, values);

  beforeAll(async () => {
    stack = await startTestStack();
    clinic = await organizationClient(stack, 'chain-clinic');
    for (let i = 0; i < 8; i++) {
      const id = (await clinic.post('Patient', patient(`CH-${i}`))).body.id;
      await clinic.get(`Patient/${id}`);
    }
  });
  afterAll(() => stack?.stop());

  it('seals every entry into an intact chain', async () => {
    const report = await verify();
    expect(report.intact).toBe(true);
    expect(report.checked).toBeGreaterThanOrEqual(16);
  });

  it('seals from several sealers at once into one chain, each entry once', async () => {
    const { services } = stack.gateway;
    const { sealAuditChain } = await import('../../src/audit/chain.js');
    const writes = Array.from({ length: 20 }, (_, i) => clinic.post('Patient', patient(`CH-C-${i}`)));
    const sealed = await Promise.all([...writes, sealAuditChain(services.db), sealAuditChain(services.db), sealAuditChain(services.db)]);
    expect(sealed.length).toBe(23);
    const report = await verify();
    expect(report.intact).toBe(true);
    const { rows } = await sql(`SELECT (SELECT count(*)::int FROM audit_event) AS n, count(DISTINCT c.seq)::int AS sealed,
      max(c.position)::int AS top, (SELECT count(*)::int FROM audit_unsealed) AS waiting FROM audit_chain c`);
    expect(rows[0]).toEqual({ n: report.checked, sealed: report.checked, top: report.checked, waiting: 0 });
  });

  const RECORDED = '2026-04-01T09:00:00.000000Z';
  const contentOf = (id: string) => JSON.stringify({ resourceType: 'AuditEvent', id, outcome: '0' });
  /**
   * An entry written straight into the store, as a writer that stores no digest (or an older gateway)
   * leaves it; `queued: false` takes it off the sealer's queue in the same transaction.
   */
  const storeEntry = async (id: string, { digest = null as string | null, outcome = '0', queued = true } = {}) =>
    stack.gateway.services.db.transaction(async (tx) => {
      const { rows } = await tx.query(`INSERT INTO audit_event (id, recorded, action, outcome, entity, content, digest)
        VALUES ($1, $2, 'read', $3, ARRAY['Patient/x'], $4, $5) RETURNING seq`, [id, RECORDED, outcome, contentOf(id), digest]);
      if (!queued) await tx.query('DELETE FROM audit_unsealed WHERE seq = $1', [rows[0].seq]);
      return Number(rows[0].seq);
    });
  const columnsOf = (id: string, outcome = '0') => ({
    id, recorded_at: RECORDED, action: 'read', outcome, agent_org: null, agent_client: null, owner: null, patient_id: null,
    entity: ['Patient/x'], purpose: null, content: contentOf(id),
  });

  it('seals entries stored without a digest by reading them, and verifies links made before digests', async () => {
    const { services } = stack.gateway;
    const { sealAuditChain, SEAL_LOCK } = await import('../../src/audit/chain.js');
    const { columnsLink } = await import('../../src/audit/entry-digest.js');
    // One queued without a digest whose row is gone has nothing to seal: it stays queued, and the run
    // seals the others and ends.
    const orphan = Number((await sql(`INSERT INTO audit_unsealed (seq) SELECT nextval('audit_event_seq_seq') RETURNING seq`)).rows[0].seq);
    const undigested = await storeEntry('chain-no-digest');
    expect(await sealAuditChain(services.db)).toBeGreaterThanOrEqual(1);
    const link = (await sql('SELECT link_form FROM audit_chain WHERE seq = $1', [undigested])).rows[0];
    expect(link).toEqual({ link_form: 'digest' });
    expect((await sql('SELECT seq FROM audit_unsealed')).rows.map((r) => Number(r.seq))).toEqual([orphan]);
    await sql('DELETE FROM audit_unsealed WHERE seq = $1', [orphan]);

    // A link of the first form, as the chain held before digests were stored: over the entry's columns.
    // Appended under the sealers' lock, so the gateway's own sealer cannot take the position meanwhile.
    const older = await storeEntry('chain-columns-link', { queued: false });
    await services.db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [SEAL_LOCK]);
      const head = (await tx.query('SELECT position, hash FROM audit_chain ORDER BY position DESC LIMIT 1')).rows[0];
      await tx.query(`INSERT INTO audit_chain (position, seq, hash, link_form) VALUES ($1, $2, $3, 'columns')`,
        [Number(head.position) + 1, older, columnsLink(head.hash, columnsOf('chain-columns-link'))]);
    });
    await clinic.get('Patient?_count=1');
    await sealAuditChain(services.db);
    const report = await verify();
    expect(report.intact).toBe(true);
    const { rows } = await sql('SELECT count(*)::int AS n FROM audit_event');
    expect(report.checked).toBe(rows[0].n);
  });

  const atPosition = (position: number) => `(SELECT seq FROM audit_chain WHERE position = ${position})`;

  it('refuses to change or delete an entry or a link through the store', async () => {
    await expect(sql(`UPDATE audit_event SET outcome = '8' WHERE seq = ${atPosition(1)}`)).rejects.toThrow(/cannot be changed/);
    await expect(sql(`DELETE FROM audit_event WHERE seq = ${atPosition(1)}`)).rejects.toThrow(/cannot be deleted/);
    await expect(sql('TRUNCATE audit_event')).rejects.toThrow(/cannot be deleted/);
    await expect(sql("UPDATE audit_chain SET hash = repeat('0', 64) WHERE position = 2")).rejects.toThrow(/cannot be changed/);
    await expect(sql('DELETE FROM audit_chain WHERE position = 2')).rejects.toThrow(/cannot be deleted/);
    await expect(sql('TRUNCATE audit_chain')).rejects.toThrow(/cannot be deleted/);
    expect((await verify()).intact).toBe(true);
  });

  it('detects an entry changed between its write and its sealing', async () => {
    const { services } = stack.gateway;
    const { sealAuditChain } = await import('../../src/audit/chain.js');
    const { entryDigest } = await import('../../src/audit/entry-digest.js');
    // The writer digested outcome '0'; the row holds '8' by the time the sealer links it.
    const id = 'chain-changed-before-sealing';
    const changed = await storeEntry(id, { digest: entryDigest(columnsOf(id)), outcome: '8' });
    await sealAuditChain(services.db);
    const position = Number((await sql('SELECT position FROM audit_chain WHERE seq = $1', [changed])).rows[0].position);
    expect(await verify()).toMatchObject({ intact: false, checked: position - 1, position, reason: expect.stringContaining('altered') });
  });

  it('detects an entry removed behind the trigger', async () => {
    await sql('ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only');
    await sql(`DELETE FROM audit_event WHERE seq = ${atPosition(9)}`);
    await sql('ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only');
    expect(await verify()).toMatchObject({ intact: false, checked: 8, position: 9, reason: expect.stringContaining('missing') });
  });

  it('detects a link removed behind the trigger', async () => {
    await sql('ALTER TABLE audit_chain DISABLE TRIGGER audit_chain_append_only');
    await sql('DELETE FROM audit_chain WHERE position = 7');
    await sql('ALTER TABLE audit_chain ENABLE TRIGGER audit_chain_append_only');
    expect(await verify()).toMatchObject({ intact: false, checked: 6, position: 7, reason: expect.stringContaining('missing') });
  });

  it('detects an altered entry, reporting the first broken link', async () => {
    await sql('ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only');
    await sql(`UPDATE audit_event SET content = jsonb_set(content::jsonb, '{outcome}', '"8"')::json WHERE seq = ${atPosition(4)}`);
    await sql('ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only');
    expect(await verify()).toMatchObject({ intact: false, checked: 3, position: 4, reason: expect.stringContaining('altered') });
  });

  it('is for the administrator only', async () => {
    expect((await clinic.get('AuditEvent/$verify')).status).toBe(403);
  });
});
