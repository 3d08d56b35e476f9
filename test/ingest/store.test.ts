import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pruneOnce } from '../../src/ingest/pruner.js';
import { MEDICAL_INSTITUTION_NO } from '../../src/ingest/sender.js';
import { createLogger, log, setLogger } from '../../src/logger.js';
import { FhirClient } from '../support/fhir-client.js';
import { ADMIN_TOKEN, stackName, startTestStack, type TestStack } from '../support/stack.js';
import { ackOf, post, registerSender } from './support.js';

const MSH = (control: string, type: string, time: string) =>
  `MSH|^~\\&|MIDORI-EMR|MIDORI|GW|RENKEI|${time}||${type}|${control}|P|2.5||||||UNICODE UTF-8`;
const message = (...segments: string[]) => Buffer.from(`${segments.join('\r')}\r`, 'utf8');
const NEW_PATIENT_ID = '0000990001';
const RDE = message(MSH('RX-EARLY', 'RDE^O11^RDE_O11', '20261201090000'), `PID|0001||${NEW_PATIENT_ID}^^^^PI||木村^一^^^^^L^I`,
  'ORC|NW|R-100||100_01|||||20261201085000', 'RXE||105271807^酸化マグネシウム錠３３０ｍｇ^HOT9|1||TAB^錠^MR9P',
  'TQ1|1||1013044400000000&内服・経口・１日３回朝昼夕食後&JAMISDP01');
const ADT = message(MSH('ADT-LATE', 'ADT^A08^ADT_A01', '20261201100000'), 'EVN||20261201100000',
  `PID|0001||${NEW_PATIENT_ID}^^^^PI||木村^一^^^^^L^I~キムラ^ハジメ^^^^^L^P||19380404|M`);

describe(`message store: listing, replay, retention and log hygiene (${stackName})`, () => {
  let stack: TestStack;
  let midori: string;
  let kita: string;
  const get = async (path: string, token: string) => {
    const res = await fetch(`${stack.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
    return { status: res.status, body: (await res.json()) as any };
  };
  const replay = async (id: number, token: string) => {
    const res = await fetch(`${stack.url}/admin/messages/${id}/$replay`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    return { status: res.status, body: (await res.json()) as any };
  };

  beforeAll(async () => {
    stack = await startTestStack();
    midori = await registerSender(stack, 'clinic-midori', MEDICAL_INSTITUTION_NO, '1310000099');
    kita = await registerSender(stack, 'clinic-kita', MEDICAL_INSTITUTION_NO, '1310000088');
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('a prescription that came before its patient is kept rejected, then replayed once the patient is known', async () => {
    const early = await post(`${stack.url}/ingest/hl7v2`, midori, RDE);
    expect(early.status).toBe(422);
    const ack = ackOf(early.text);
    expect(ack.code).toBe('AE');
    expect(ack.errors.join('\n')).toMatch(/ERR\|\|PID\^2\^7\|101\^Required field missing\^HL70357\|E\|\|\|\|Patient: Patient\.birthDate: at least 1 required/);
    const id = Number(early.location!.split('/').pop());

    expect(ackOf((await post(`${stack.url}/ingest/hl7v2`, midori, ADT)).text).code).toBe('AA');
    const replayed = await replay(id, midori);
    expect(replayed.status).toBe(200);
    expect(replayed.body).toMatchObject({ status: 'mapped', message: { id, status: 'mapped', attempts: 2, ack: 'AA' } });
    expect(replayed.body.message.resources.some((r: string) => r.startsWith('MedicationRequest/'))).toBe(true);
    const fhir = new FhirClient(stack.url, midori);
    const orders = await fhir.get('MedicationRequest?identifier=http://jpfhir.jp/fhir/core/IdSystem/resourceInstance-identifier|1310000099-R-100');
    expect(orders.body.total).toBe(1);
    expect((await replay(id, midori)).body).toMatchObject({ status: 'mapped', message: { attempts: 3 } });
    expect((await fhir.get(`MedicationRequest/${orders.body.entry[0].resource.id}`)).body.meta.versionId).toBe('1');
  });

  it('lists messages by status and kind; a sender sees only its own, the administrator all', async () => {
    await post(`${stack.url}/ingest/hl7v2`, kita, message(MSH('KITA-1', 'ADT^A08^ADT_A01', '20261202090000'), 'PID|1||K-1^^^^PI||北^花子||19500101|F'));
    const own = await get('/admin/messages', midori);
    expect(own.status).toBe(200);
    expect(own.body.messages.every((m: any) => m.sender === 'Organization/clinic-midori')).toBe(true);
    expect(own.body.messages.map((m: any) => m.control_id).sort()).toEqual(['ADT-LATE', 'RX-EARLY']);
    const all = await get('/admin/messages?kind=hl7v2', ADMIN_TOKEN);
    expect(all.body.total).toBe(3);
    expect((await get('/admin/messages?status=mapped&_count=1', ADMIN_TOKEN)).body).toMatchObject({ total: 3, messages: [expect.any(Object)] });
    const kitaMessage = all.body.messages.find((m: any) => m.control_id === 'KITA-1');
    expect((await get(`/admin/messages/${kitaMessage.id}`, midori)).status).toBe(404);
    expect((await replay(kitaMessage.id, midori)).status).toBe(404);
    const detail = await get(`/admin/messages/${kitaMessage.id}`, kita);
    expect(detail.body.text).toContain('北^花子');
    expect(Buffer.from(detail.body.raw, 'base64').toString('utf8')).toContain('KITA-1');
    for (const query of ['status=lost', 'kind=fax', '_count=501', '_offset=-1', '_offset=1e21', '_offset=100000000000000000000', 'since=soon'])
      expect((await get(`/admin/messages?${query}`, ADMIN_TOKEN)).status, query).toBe(400);
    expect((await get('/admin/messages/abc', ADMIN_TOKEN)).status).toBe(400);
    expect((await get('/admin/messages', '')).status).toBe(401);
  });

  it('prunes messages past the retention period, and only those', async () => {
    const services = stack.gateway.services;
    expect(await pruneOnce(services, 30)).toBe(0);
    const removed = await pruneOnce(services, 30, new Date(Date.now() + 31 * 24 * 3600_000));
    expect(removed).toBe(3);
    expect((await get('/admin/messages', ADMIN_TOKEN)).body.total).toBe(0);
    expect(await pruneOnce(services, 0, new Date(Date.now() + 365 * 24 * 3600_000))).toBe(0);
  });

  it('logs no patient names or identifiers at info level', async () => {
    const lines: string[] = [];
    const sink = new Writable({ write(chunk, _enc, done) { lines.push(String(chunk)); done(); } });
    const previous = log;
    setLogger(createLogger('info', sink));
    try {
      await post(`${stack.url}/ingest/hl7v2`, midori, message(MSH('LOG-1', 'ADT^A08^ADT_A01', '20261203090000'), 'PID|1||0000990002^^^^PI||秘密^太郎||19400101|M'));
      await post(`${stack.url}/ingest/hl7v2`, midori, message(MSH('LOG-2', 'ADT^A08^ADT_A01', '20261203090000'), 'PID|1||0000990003^^^^PI||秘密^次郎||19401399|M'));
    } finally {
      setLogger(previous);
    }
    const text = lines.join('');
    expect(text).toMatch(/HL7 message applied/);
    expect(text).toMatch(/HL7 message refused/);
    expect(text).not.toMatch(/秘密|0000990002|0000990003|19401399/);
  });
});
