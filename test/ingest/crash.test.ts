import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MEDICAL_INSTITUTION_NO } from '../../src/ingest/sender.js';
import { freshStore, RenkeiProcess } from '../exchange/processes.js';
import { FhirClient } from '../support/fhir-client.js';
import { ADMIN_TOKEN, stackName, type TestStack } from '../support/stack.js';
import { ackOf, post, registerSender } from './support.js';

const PATIENT_SYSTEM = 'urn:oid:1.2.392.100495.20.3.51.11310000088';
const adt = (control: string, patientNo: string) => Buffer.from(
  `MSH|^~\\&|MIDORI-EMR|MIDORI|GW|RENKEI|20261201090000||ADT^A08^ADT_A01|${control}|P|2.5||||||UNICODE UTF-8\r` +
  `PID|0001||${patientNo}^^^^PI||緑川^一郎^^^^^L^I~ミドリカワ^イチロウ^^^^^L^P||19380505|M\r`, 'utf8');

// Holding the apply's transaction open takes a lock from a second session, which the embedded store
// (one PGlite session for every connection) cannot give; the crash itself is the same on both stores.
describe.skipIf(stackName !== 'servers')(`HL7 v2 apply group: gateway killed inside its transaction (${stackName})`, () => {
  let store: Awaited<ReturnType<typeof freshStore>>;
  let gateway: RenkeiProcess | undefined;
  let blocker: pg.Client | undefined;

  beforeEach(async () => {
    store = await freshStore();
  });
  afterEach(async () => {
    await blocker?.end().catch(() => {});
    await gateway?.stop();
    await store.cleanup();
  });

  it('leaves nothing of the unanswered messages applied; sent again, each is applied once and its first copy stays kept', async () => {
    gateway = await RenkeiProcess.start('serve', { ...store.env, RENKEI_WORKERS: 'off' });
    let stack: TestStack = gateway.stack!;
    const token = await registerSender(stack, 'clinic-midori', MEDICAL_INSTITUTION_NO, '1310000088');
    const messages = ['CRASH-1', 'CRASH-2', 'CRASH-3'].map((control, i) => ({ control, patientNo: `00008800${i}`, bytes: adt(control, `00008800${i}`) }));

    // The group's transaction writes the messages' resources, then waits to record their clocks.
    blocker = new pg.Client({ connectionString: store.env.DATABASE_URL });
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query('LOCK TABLE ingest_resource_clock IN SHARE ROW EXCLUSIVE MODE');
    const unanswered = messages.map((m) => post(`${stack.url}/ingest/hl7v2`, token, m.bytes).catch((err: Error) => err));
    // Killed once every message is kept (received) and an apply transaction waits; messages not in that
    // group wait in the process for the next one.
    for (let i = 0; ; i++) {
      const { rows } = await blocker.query(`SELECT (SELECT count(*)::int FROM pg_stat_activity
          WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()) AS waiting,
        (SELECT count(*)::int FROM ingest_message WHERE control_id = ANY($1::text[])) AS kept`, [messages.map((m) => m.control)]);
      if (rows[0].waiting > 0 && rows[0].kept === messages.length) break;
      if (i > 200) throw new Error('the apply never reached the lock');
      await new Promise((r) => setTimeout(r, 50));
    }
    await gateway.crash();
    await blocker.query('ROLLBACK');
    for (const answer of await Promise.all(unanswered)) expect(answer).toBeInstanceOf(Error); // no ACK reached the sender

    gateway = await RenkeiProcess.start('serve', { ...store.env, RENKEI_WORKERS: 'off' });
    stack = gateway.stack!;
    const fhir = new FhirClient(stack.url, token);
    const patients = async (no: string) => (await fhir.get(`Patient?identifier=${encodeURIComponent(PATIENT_SYSTEM)}|${no}`)).body.entry ?? [];
    for (const m of messages) expect(await patients(m.patientNo)).toHaveLength(0);

    for (const m of messages) {
      const ack = ackOf((await post(`${stack.url}/ingest/hl7v2`, token, m.bytes)).text);
      expect(ack.code).toBe('AA');
      expect(ack.msa).toContain('Accepted');
    }
    for (const m of messages) {
      const found = await patients(m.patientNo);
      expect(found).toHaveLength(1);
      expect(found[0].resource.meta.versionId).toBe('1');
      const kept = await (await fetch(`${stack.url}/admin/messages?control_id=${m.control}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json() as any;
      expect(kept.messages.map((k: any) => k.status).sort()).toEqual(['mapped', 'received']);
    }
  });
});
