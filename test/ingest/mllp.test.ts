import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway } from '../../src/gateway.js';
import { ingestSettings } from '../../src/ingest/settings.js';
import { decodeMessage } from '../../src/ingest/hl7v2/charset.js';
import { startMllpListener, type MllpListener } from '../../src/ingest/mllp.js';
import { frame } from '../../src/ingest/mllp-framing.js';
import { MEDICAL_INSTITUTION_NO } from '../../src/ingest/sender.js';
import { fromRoot } from '../../src/paths.js';
import { FhirClient } from '../support/fhir-client.js';
import { ADMIN_TOKEN, stackName, startTestStack, type TestStack } from '../support/stack.js';
import { ackOf, MllpClient, putOrganization, registerClient, startMllp } from './support.js';

const golden = (name: string) => readFileSync(fromRoot('test', 'golden', 'hl7v2', name));
const utf8 = (control: string, facility = 'MIDORI', application = 'MIDORI-EMR', time = '20261201090000') => Buffer.from([
  `MSH|^~\\&|${application}|${facility}|GW|RENKEI|${time}||ADT^A08^ADT_A01|${control}|P|2.5||||||UNICODE UTF-8`,
  'PID|0001||0000150001^^^^PI||中村^直子^^^^^L^I~ナカムラ^ナオコ^^^^^L^P||19450909|F',
].join('\r') + '\r', 'utf8');
const ackText = (bytes: Buffer) => decodeMessage(bytes).text;

describe(`HL7 v2 over MLLP (${stackName})`, () => {
  let stack: TestStack;
  let mllp: MllpListener;
  let clinicToken: string;
  const admin = (method: string, path: string, body?: unknown) => fetch(`${stack.url}${path}`, {
    method, headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const messages = async (query: string) => (await (await fetch(`${stack.url}/admin/messages?${query}`, {
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  })).json()) as { total: number; messages: any[] };

  beforeAll(async () => {
    stack = await startTestStack();
    mllp = await startMllp(stack, { maxFrameBytes: 64 * 1024 });
    await putOrganization(stack, 'clinic-midori', [{ system: MEDICAL_INSTITUTION_NO, value: '1310000099' }]);
    await putOrganization(stack, 'clinic-kita', [{ system: MEDICAL_INSTITUTION_NO, value: '1310000088' }]);
    const midori = await registerClient(stack, 'clinic-midori');
    clinicToken = midori.token;
    const kita = await registerClient(stack, 'clinic-kita');
    expect((await admin('POST', '/admin/mllp-senders', { sending_facility: 'MIDORI', client_id: midori.clientId })).status).toBe(201);
    expect((await admin('POST', '/admin/mllp-senders', { sending_facility: 'KITA', sending_application: 'KITA-EMR', client_id: kita.clientId })).status).toBe(201);
  });
  afterAll(async () => {
    await mllp?.close();
    await stack?.stop();
  });

  it('manages sender mappings: listed, a second mapping of the same sender is a conflict, unknown clients refused', async () => {
    const list = (await (await admin('GET', '/admin/mllp-senders')).json()) as any[];
    expect(list.map((s) => [s.sending_facility, s.sending_application, s.organization])).toEqual([
      ['KITA', 'KITA-EMR', 'Organization/clinic-kita'], ['MIDORI', '', 'Organization/clinic-midori'],
    ]);
    expect((await admin('POST', '/admin/mllp-senders', { sending_facility: 'MIDORI', client_id: list[1].client_id })).status).toBe(409);
    expect((await admin('POST', '/admin/mllp-senders', { sending_facility: 'X', client_id: 'nobody' })).status).toBe(422);
    expect((await admin('POST', '/admin/mllp-senders', { client_id: 'nobody' })).status).toBe(400);
    const asClient = await fetch(`${stack.url}/admin/mllp-senders`, { headers: { authorization: `Bearer ${clinicToken}` } });
    expect(asClient.status).toBe(403);
  });

  it('acknowledges several messages on one connection in order, with the data committed before AA', async () => {
    const client = await MllpClient.connect(mllp.port);
    client.send(golden('fixture-adt-a08-patient.iso2022jp.hl7'));
    client.send(golden('fixture-rde-o11-two-drugs.iso2022jp.hl7'));
    client.send(golden('fixture-rde-o11-discontinue.iso2022jp.hl7'));
    const acks = (await client.receive(3)).map((a) => ackOf(ackText(a)));
    expect(acks.map((a) => [a.code, a.control])).toEqual([['AA', 'MD2026110400001'], ['AA', 'MD2026110500001'], ['AA', 'MD2026111200001']]);
    client.close();
    const fhir = new FhirClient(stack.url, clinicToken);
    const orders = await fhir.get('MedicationRequest?status=stopped');
    expect(orders.body.total).toBe(1);
    expect(orders.body.entry[0].resource.meta.tag).toContainEqual(expect.objectContaining({ code: 'Organization/clinic-midori' }));
  });

  it('is served by the gateway itself on MLLP_PORT, next to POST /ingest/hl7v2 on its HTTP port', async () => {
    expect(stack.gateway.mllp.port).toBeGreaterThan(0);
    const client = await MllpClient.connect(stack.gateway.mllp.port);
    client.send(utf8('OWN-LISTENER-1'));
    const [ack] = (await client.receive(1)).map((a) => ackOf(ackText(a)));
    expect([ack.code, ack.control]).toEqual(['AA', 'OWN-LISTENER-1']);
    client.close();
    expect((await fetch(`${stack.url}/ingest/hl7v2`, { method: 'POST', body: 'MSH|' })).status).toBe(401);
  });

  it('refuses to start a gateway whose MLLP port is taken, naming the cause', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'renkei-mllp-taken-'));
    try {
      await expect(startGateway({ ...stack.config, dataDir, port: 0, mllpPort: stack.gateway.mllp.port })).rejects.toThrow(/EADDRINUSE/);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
    expect((await fetch(`${stack.url}/healthz`)).status, 'the running gateway is untouched').toBe(200);
  });

  it('reads frames split across packets and several frames in one packet', async () => {
    const client = await MllpClient.connect(mllp.port);
    const bytes = Buffer.concat([frame(utf8('SPLIT-1')), frame(utf8('SPLIT-2'))]);
    for (let i = 0; i < bytes.length; i += 7) client.write(bytes.subarray(i, i + 7));
    client.write(Buffer.concat([frame(utf8('SPLIT-3')), frame(utf8('SPLIT-1'))]));
    const acks = (await client.receive(4)).map((a) => ackOf(ackText(a)));
    expect(acks.map((a) => a.control)).toEqual(['SPLIT-1', 'SPLIT-2', 'SPLIT-3', 'SPLIT-1']);
    expect(acks.every((a) => a.code === 'AA')).toBe(true);
    expect(acks[3].msa).toMatch(/Duplicate/);
    client.close();
    const dup = await messages('control_id=SPLIT-1');
    expect(dup.messages.map((m) => m.status).sort()).toEqual(['duplicate', 'mapped']);
  });

  it('refuses an unmapped sender with AR, keeping the message with no owner', async () => {
    const client = await MllpClient.connect(mllp.port);
    client.send(utf8('STRANGER-1', 'NOWHERE'));
    const [ack] = await client.receive(1);
    const parsed = ackOf(ackText(ack));
    expect(parsed.code).toBe('AR');
    expect(parsed.errors[0]).toMatch(/^ERR\|\|MSH\^1\^4\|204\^/);
    client.close();
    const kept = await messages('control_id=STRANGER-1');
    expect(kept.messages).toEqual([expect.objectContaining({ status: 'rejected', transport: 'mllp', ack: 'AR' })]);
    expect(kept.messages[0].sender).toBeUndefined();
  });

  it('binds a connection to the client of its first message', async () => {
    const client = await MllpClient.connect(mllp.port);
    client.send(utf8('BIND-1', 'KITA', 'KITA-EMR'));
    client.send(utf8('BIND-2', 'MIDORI'));
    client.send(utf8('BIND-3', 'KITA', 'OTHER-APP'));
    const acks = (await client.receive(3)).map((a) => ackOf(ackText(a)));
    expect(acks.map((a) => a.code)).toEqual(['AA', 'AR', 'AR']);
    expect(acks[1].errors[0]).toMatch(/bound to another sender/);
    expect(acks[2].errors[0]).toMatch(/not registered/);
    client.close();
    // Refused on a bound connection: kept as the bound client's, which sees them.
    const refused = await messages('status=rejected');
    const bound = refused.messages.filter((m) => ['BIND-2', 'BIND-3'].includes(m.control_id));
    expect(bound.map((m) => [m.control_id, m.sender])).toEqual(expect.arrayContaining([
      ['BIND-2', 'Organization/clinic-kita'], ['BIND-3', 'Organization/clinic-kita'],
    ]));
    expect(bound).toHaveLength(2);
    const kita = new FhirClient(stack.url, (await registerClient(stack, 'clinic-kita')).token);
    const patients = await kita.get('Patient?identifier=urn:oid:1.2.392.100495.20.3.51.11310000088|0000150001');
    expect(patients.body.total).toBe(1);
  });

  it('refuses an oversize frame with AR, keeps its head, and goes on reading the connection', async () => {
    const client = await MllpClient.connect(mllp.port);
    const big = Buffer.concat([utf8('HUGE-1'), Buffer.alloc(100 * 1024, 0x41)]);
    client.send(big);
    client.send(utf8('AFTER-HUGE'));
    const acks = (await client.receive(2)).map((a) => ackOf(ackText(a)));
    expect(acks.map((a) => [a.code, a.control])).toEqual([['AR', 'HUGE-1'], ['AA', 'AFTER-HUGE']]);
    expect(acks[0].errors[0]).toMatch(/larger than 65536 bytes/);
    client.close();
    const kept = await messages('control_id=HUGE-1');
    expect(kept.messages[0]).toMatchObject({ status: 'rejected', sender: 'Organization/clinic-midori' });
  });

  it('answers malformed and wrong-charset messages with AR and ERR without closing the connection', async () => {
    const client = await MllpClient.connect(mllp.port);
    client.send(Buffer.from('MSH|^~\\&|MIDORI-EMR|MIDORI|GW|R|20261201||ADT^A08|BAD-1|P|2.5||||||~ISO IR87\rPID|1||1^^^^PI||\xe5\xb1\xb1', 'latin1'));
    client.send(Buffer.from('hello'));
    client.send(utf8('GOOD-1'));
    const acks = (await client.receive(3)).map((a) => ackOf(ackText(a)));
    expect(acks.map((a) => a.code)).toEqual(['AR', 'AR', 'AA']);
    expect(acks[0].errors[0]).toMatch(/^ERR\|\|PID\^2\^5\|102\^/);
    client.close();
  });

  it('a sender mapping removed takes effect on the next message', async () => {
    expect((await admin('DELETE', '/admin/mllp-senders/KITA?sending_application=KITA-EMR')).status).toBe(204);
    expect((await admin('DELETE', '/admin/mllp-senders/KITA?sending_application=KITA-EMR')).status).toBe(404);
    const client = await MllpClient.connect(mllp.port);
    client.send(utf8('GONE-1', 'KITA', 'KITA-EMR'));
    expect(ackOf(ackText((await client.receive(1))[0])).code).toBe('AR');
    client.close();
  });

  it('closes a connection idle for RENKEI_MLLP_IDLE_TIMEOUT_SECONDS (600 by default, 0 never)', async () => {
    expect(ingestSettings({}).mllpIdleTimeoutSeconds).toBe(600);
    expect(ingestSettings({ RENKEI_MLLP_IDLE_TIMEOUT_SECONDS: '0' }).mllpIdleTimeoutSeconds).toBe(0);
    expect(() => ingestSettings({ RENKEI_MLLP_IDLE_TIMEOUT_SECONDS: 'soon' })).toThrow(/RENKEI_MLLP_IDLE_TIMEOUT_SECONDS/);
    const services = stack.gateway.services;
    const config = { ...services.config, ingest: ingestSettings({ RENKEI_MLLP_IDLE_TIMEOUT_SECONDS: '1' }) };
    const quick = await startMllpListener({ ...services, config }, 0, { host: '127.0.0.1' });
    try {
      const client = await MllpClient.connect(quick.port);
      client.send(utf8('IDLE-1'));
      expect(ackOf(ackText((await client.receive(1))[0])).code).toBe('AA');
      await client.closed;
    } finally {
      await quick.close();
    }
  });
});
