import { readFileSync } from 'node:fs';
import iconv from 'iconv-lite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeMessage } from '../../src/ingest/hl7v2/charset.js';
import { encodeIso2022jp } from '../../src/ingest/hl7v2/iso2022jp.js';
import { MEDICAL_INSTITUTION_NO } from '../../src/ingest/sender.js';
import { fromRoot } from '../../src/paths.js';
import { adminClient, FhirClient } from '../support/fhir-client.js';
import { ADMIN_TOKEN, stackName, startTestStack, type TestStack } from '../support/stack.js';
import { ackOf, post, registerClient, registerSender } from './support.js';

const golden = (name: string) => readFileSync(fromRoot('test', 'golden', 'hl7v2', name));
const PATIENT_SYSTEM = 'urn:oid:1.2.392.100495.20.3.51.11310000099';
const MSH = (control: string, type: string, time: string, charset = 'UNICODE UTF-8') =>
  `MSH|^~\\&|MIDORI-EMR|MIDORI|GW|RENKEI|${time}||${type}|${control}|P|2.5||||||${charset}`;
const PID = 'PID|0001||0000120034^^^^PI||山田^太郎^^^^^L^I~ヤマダ^タロウ^^^^^L^P||19350710|M|||^^^^3300063^JPN^H^埼玉県さいたま市浦和区高砂三丁目１番地';
const utf8 = (...segments: string[]) => Buffer.from(`${segments.join('\r')}\r`, 'utf8');

describe(`HL7 v2 over HTTP (${stackName})`, () => {
  let stack: TestStack;
  let token: string;
  let fhir: FhirClient;
  const send = (body: Uint8Array | string, t: string | undefined = token) => post(`${stack.url}/ingest/hl7v2`, t, body);
  const patientId = async () => (await fhir.get(`Patient?identifier=${encodeURIComponent(PATIENT_SYSTEM)}|0000120034`)).body.entry[0].resource.id as string;

  beforeAll(async () => {
    stack = await startTestStack({ RENKEI_MAX_BODY: '256kb' });
    token = await registerSender(stack, 'clinic-midori', MEDICAL_INSTITUTION_NO, '1310000099');
    fhir = new FhirClient(stack.url, token);
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('ADT^A08 in ISO-2022-JP: AA once committed, answered in ISO-2022-JP, Japanese text intact in the stored Patient', async () => {
    const res = await send(golden('fixture-adt-a08-patient.iso2022jp.hl7'));
    expect(res.status).toBe(200);
    expect(res.contentType).toBe('x-application/hl7-v2+er7; charset=ISO-2022-JP');
    const ack = ackOf(decodeMessage(res.bytes).text);
    expect(ack).toMatchObject({ code: 'AA', control: 'MD2026110400001', errors: [] });
    const found = await fhir.get(`Patient?identifier=${encodeURIComponent(PATIENT_SYSTEM)}|0000120034`);
    expect(found.body.total).toBe(1);
    const patient = found.body.entry[0].resource;
    expect(patient.name.map((n: any) => n.text)).toEqual(['山田 太郎', 'ヤマダ タロウ']);
    expect(patient.address[0].text).toBe('埼玉県さいたま市浦和区高砂三丁目１番地');
    const observations = await fhir.get(`Observation?subject=Patient/${patient.id}`);
    expect(observations.body.entry.map((e: any) => e.resource.code.coding[0].code).sort()).toEqual(['29463-7', '8302-2']);
    const allergies = await fhir.get(`AllergyIntolerance?patient=Patient/${patient.id}`);
    expect(allergies.body.entry[0].resource.code.text).toBe('ペニシリン系');
  });

  it('refuses training and debugging messages (MSH-11 T, D) with AR 202, keeping them out of live data', async () => {
    const training = utf8(MSH('TRAIN-1', 'ADT^A08^ADT_A01', '20261201090000').replace('|P|2.5|', '|T|2.5|'),
      PID.replace('0000120034', '0000999001'));
    const res = await send(training);
    const ack = ackOf(res.text);
    expect([res.status, ack.code]).toEqual([400, 'AR']);
    expect(ack.errors[0]).toContain('MSH^1^11');
    expect(ack.errors[0]).toContain('202');
    expect((await fhir.get(`Patient?identifier=${encodeURIComponent(PATIENT_SYSTEM)}|0000999001`)).body.total).toBe(0);
  });

  it('takes the patient id namespace from the registered Organization, never from MSH-4', async () => {
    expect((await adminClient(stack).put('Organization/clinic-unnumbered', { resourceType: 'Organization', id: 'clinic-unnumbered', name: '番号未登録診療所' })).status).toBe(201);
    const { token: unnumbered } = await registerClient(stack, 'clinic-unnumbered');
    // MSH-4 claims clinic-midori's 医療機関コード; the sender has none registered.
    const claim = utf8(MSH('NS-1', 'ADT^A08^ADT_A01', '20261201090000').replace('|MIDORI|', '|1310000099|'), PID);
    expect(ackOf((await send(claim, unnumbered)).text).code).toBe('AA');
    const own = new FhirClient(stack.url, unnumbered);
    const [patient] = (await own.get('Patient')).body.entry.map((e: any) => e.resource);
    expect(patient.identifier[0].system).toBe('http://renkei.jp/fhir/NamingSystem/local-patient-id/clinic-unnumbered');
    expect((await own.get(`Patient?identifier=${encodeURIComponent(PATIENT_SYSTEM)}|0000120034`)).body.total).toBe(0);
  });

  it('RDE^O11 NW then DC: the same MedicationRequest becomes stopped; an older NW arriving later changes nothing', async () => {
    expect(ackOf((await send(golden('fixture-rde-o11-two-drugs.iso2022jp.hl7'))).text).code).toBe('AA');
    const before = await fhir.get(`MedicationRequest?subject=Patient/${await patientId()}`);
    expect(before.body.total).toBe(2);
    const magnesium = before.body.entry.find((e: any) => e.resource.identifier[0].value.endsWith('A-501')).resource;
    expect(ackOf((await send(golden('fixture-rde-o11-discontinue.iso2022jp.hl7'))).text).code).toBe('AA');
    const stopped = (await fhir.get(`MedicationRequest/${magnesium.id}`)).body;
    expect(stopped).toMatchObject({ status: 'stopped', meta: { versionId: '2' } });

    const older = Buffer.from(golden('fixture-rde-o11-one-drug.utf8.hl7').toString('utf8')
      .replace('MD2026110500002', 'MD2026110600009').replace('20261105101530', '20261106080000'), 'utf8');
    const res = await send(older);
    expect(ackOf(res.text)).toMatchObject({ code: 'AA' });
    expect(ackOf(res.text).msa).toMatch(/newer message/);
    expect((await fhir.get(`MedicationRequest/${magnesium.id}`)).body).toMatchObject({ status: 'stopped', meta: { versionId: '2' } });
  });

  it('the same MSH-10 again is acknowledged and changes nothing', async () => {
    const message = utf8(MSH('DUP-1', 'ADT^A08^ADT_A01', '20261201090000'), PID.replace('19350710', '19350710'));
    expect(ackOf((await send(message)).text).code).toBe('AA');
    const version = (await fhir.get(`Patient/${await patientId()}`)).body.meta.versionId;
    const again = await send(utf8(MSH('DUP-1', 'ADT^A08^ADT_A01', '20261201090000'), PID.replace('19350710', '19350711')));
    expect(again.status).toBe(200);
    expect(ackOf(again.text)).toMatchObject({ code: 'AA', control: 'DUP-1' });
    expect(ackOf(again.text).msa).toMatch(/Duplicate of message \d+/);
    const after = (await fhir.get(`Patient/${await patientId()}`)).body;
    expect(after.meta.versionId).toBe(version);
    expect(after.birthDate).toBe('1935-07-10');
  });

  it('an older ADT arriving after a newer one does not roll the patient back', async () => {
    const newer = utf8(MSH('ORD-2', 'ADT^A08^ADT_A01', '20261210090000'), PID.replace('高砂三丁目１番地', '高砂四丁目２番地'));
    const older = utf8(MSH('ORD-1', 'ADT^A08^ADT_A01', '20261209090000'), PID.replace('高砂三丁目１番地', '岸町一丁目'));
    expect(ackOf((await send(newer)).text).code).toBe('AA');
    expect(ackOf((await send(older)).text).code).toBe('AA');
    expect((await fhir.get(`Patient/${await patientId()}`)).body.address[0].text).toBe('埼玉県さいたま市浦和区高砂四丁目２番地');
  });

  it('an HL7 "" deletes the element; a field not sent leaves it as stored', async () => {
    const withPhone = utf8(MSH('DEL-1', 'ADT^A08^ADT_A01', '20261211090000'), `${PID}||^PRN^PH^^^^^^^^^048-000-9999`);
    expect(ackOf((await send(withPhone)).text).code).toBe('AA');
    const notSent = utf8(MSH('DEL-2', 'ADT^A08^ADT_A01', '20261211100000'), 'PID|0001||0000120034^^^^PI||山田^太郎^^^^^L^I||19350710|M');
    expect(ackOf((await send(notSent)).text).code).toBe('AA');
    let patient = (await fhir.get(`Patient/${await patientId()}`)).body;
    expect(patient.telecom[0].value).toBe('048-000-9999');
    expect(patient.address).toBeDefined();
    const deleted = utf8(MSH('DEL-3', 'ADT^A08^ADT_A01', '20261211110000'), 'PID|0001||0000120034^^^^PI||山田^太郎^^^^^L^I||19350710|M|||""||""');
    expect(ackOf((await send(deleted)).text).code).toBe('AA');
    patient = (await fhir.get(`Patient/${await patientId()}`)).body;
    expect(patient.telecom).toBeUndefined();
    expect(patient.address).toBeUndefined();
  });

  it('refuses what is not HL7, is cut short or is in another character set with AR and ERR, keeping the bytes', async () => {
    const notHl7 = await send('{"resourceType":"Patient"}');
    expect(notHl7.status).toBe(400);
    expect(ackOf(notHl7.text)).toMatchObject({ code: 'AR' });
    expect(ackOf(notHl7.text).errors[0]).toMatch(/^ERR\|\|\|100\^/);

    const full = golden('adt-a08-contacts-allergies.utf8.hl7');
    const truncated = full.subarray(0, full.indexOf(Buffer.from('佐藤')) + 2);
    const cut = await send(truncated);
    expect(cut.status).toBe(400);
    expect(ackOf(cut.text).errors[0]).toMatch(/^ERR\|\|PID\^3\^5\|102\^/);

    const wrong = await send(Buffer.from(golden('fixture-adt-a08-patient.iso2022jp.hl7').toString('latin1').replace(/\x1b\$B[^\x1b]*\x1b\(B/g, 'テスト'), 'utf8'));
    expect(wrong.status).toBe(400);
    expect(ackOf(decodeMessage(wrong.bytes).text).errors[0]).toMatch(/^ERR\|\|PID\^3\^5\|102\^Data type error\^HL70357\|E\|\|\|\|The bytes are not valid iso-2022-jp/);
    expect(wrong.location).toMatch(/^\/admin\/messages\/\d+$/);
    const kept = await fetch(`${stack.url}${wrong.location}`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.json() as Promise<any>);
    expect(kept).toMatchObject({ status: 'rejected', ack: 'AR', kind: 'hl7v2' });
    expect(Buffer.from(kept.raw, 'base64').toString('utf8')).toContain('テスト');
  });

  it('a NUL byte is AR 102 naming where it is, not a retryable failure, and nothing of the message is stored', async () => {
    const nul = await send(utf8(MSH('NUL-1', 'ADT^A08^ADT_A01', '20261104120000'), PID.replace('0000120034', 'NUL\u00000001')));
    expect(nul.status).toBe(400);
    expect(ackOf(nul.text)).toMatchObject({ code: 'AR' });
    expect(ackOf(nul.text).errors[0]).toMatch(/^ERR\|\|PID\^2\^3\|102\^Data type error\^HL70357\|E\|\|\|\|The message contains a NUL byte/);
    expect((await fhir.get(`Patient?identifier=${encodeURIComponent(PATIENT_SYSTEM)}|NUL`)).body.total).toBe(0);
    const kept = await fetch(`${stack.url}${nul.location}`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.json() as Promise<any>);
    expect(kept).toMatchObject({ status: 'rejected', ack: 'AR', kind: 'hl7v2' });
    expect(Buffer.from(kept.raw, 'base64').includes(0), 'the bytes are kept as sent').toBe(true);
  });

  it('a content error is AE 422 naming segment and field, and nothing of the message is stored', async () => {
    const message = encodeIso2022jp([
      MSH('HALF-1', 'RDE^O11^RDE_O11', '20261212090000', '~ISO IR87'), PID, 'PV1|0001|O',
      'ORC|NW|C-901||901_01|||||20261212085000', 'RXE||105271807^酸化マグネシウム錠３３０ｍｇ^HOT9|2||TAB^錠^MR9P', 'TQ1|1||1013044400000000&内服&JAMISDP01',
      'ORC|ZZ|C-902||901_02|||||20261212085000', 'RXE||620000520^ケトプロフェンテープ^YJ|1||SHT^枚^MR9P', 'TQ1|1||2000000000000000&外用&JAMISDP01',
    ].join('\r') + '\r');
    const res = await send(message);
    expect(res.status).toBe(422);
    const ack = ackOf(decodeMessage(res.bytes).text);
    expect(ack.code).toBe('AE');
    expect(ack.errors).toHaveLength(1);
    expect(ack.errors[0]).toMatch(/^ERR\|\|ORC\^7\^1\|103\^Table value not found\^HL70357\|E\|\|\|\|MedicationRequest\.status: "ZZ" is not one of NW, XO, CA, DC/);
    const orders = await fhir.get(`MedicationRequest?identifier=${encodeURIComponent('http://jpfhir.jp/fhir/core/IdSystem/resourceInstance-identifier')}|1310000099-C-901`);
    expect(orders.body.total).toBe(0);
  });

  it('a body over the limit is refused with AR 413 and only its head kept', async () => {
    const big = Buffer.concat([utf8(MSH('BIG-1', 'ADT^A08^ADT_A01', '20261212090000'), PID), Buffer.alloc(300 * 1024, 0x41)]);
    const res = await send(big);
    expect(res.status).toBe(413);
    expect(ackOf(res.text)).toMatchObject({ code: 'AR', control: 'BIG-1' });
    const kept = await fetch(`${stack.url}${res.location}`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.json() as Promise<any>);
    expect(Buffer.from(kept.raw, 'base64').length).toBeLessThan(big.length);
  });

  it('answers Shift_JIS in Shift_JIS', async () => {
    const res = await send(golden('rde-o11-as-needed.sjis.hl7'));
    expect(res.status).toBe(200);
    expect(res.contentType).toBe('x-application/hl7-v2+er7; charset=Shift_JIS');
    expect(ackOf(iconv.decode(res.bytes, 'cp932')).code).toBe('AA');
  });

  it('authenticates the sender: no token 401, the administrator 403 AR, a read-only client AR 403', async () => {
    const message = golden('adt-a04-outpatient.utf8.hl7');
    expect((await send(message, '')).status).toBe(401);
    const admin = await send(message, ADMIN_TOKEN);
    expect(admin.status).toBe(403);
    expect(ackOf(admin.text).code).toBe('AR');
    const { token: readOnly } = await registerClient(stack, 'clinic-midori', 'system/*.rs');
    const refused = await send(message, readOnly);
    expect(refused.status).toBe(403);
    expect(ackOf(refused.text).code).toBe('AR');
    expect((await adminClient(stack).get('Encounter')).body.total ?? 0).toBe(0);
  });

  describe('when the gateway itself fails', () => {
    const message = (control: string) => utf8(MSH(control, 'ADT^A08^ADT_A01', '20261220090000'),
      'PID|0001||0000120099^^^^PI||川口^花子^^^^^L^I~カワグチ^ハナコ^^^^^L^P||19400101|F');
    const raw = async (body: Buffer) => {
      const res = await fetch(`${stack.url}/ingest/hl7v2`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body });
      return { status: res.status, retryAfter: res.headers.get('retry-after'), location: res.headers.get('location'), ack: ackOf(decodeMessage(Buffer.from(await res.arrayBuffer())).text) };
    };
    /** A trigger that makes every insert into `table` fail, as a store that cannot write would. */
    const failing = async (table: string, run: () => Promise<void>) => {
      const db = stack.gateway.services.db;
      await db.query(`CREATE FUNCTION test_refuse_${table}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'store unavailable'; END $$`);
      await db.query(`CREATE TRIGGER test_refuse BEFORE INSERT ON ${table} FOR EACH STATEMENT EXECUTE FUNCTION test_refuse_${table}()`);
      try {
        await run();
      } finally {
        await db.query(`DROP TRIGGER test_refuse ON ${table}`);
        await db.query(`DROP FUNCTION test_refuse_${table}()`);
      }
    };

    it('a write that fails is AR 207 with 503 and Retry-After; the message is kept rejected and may be sent again', async () => {
      await failing('ingest_resource_clock', async () => {
        const res = await raw(message('DOWN-1'));
        expect(res).toMatchObject({ status: 503, retryAfter: '30', ack: { code: 'AR', control: 'DOWN-1' } });
        expect(res.ack.errors).toEqual([expect.stringMatching(/^ERR\|\|\|207\^Application internal error\^HL70357\|E\|/)]);
        expect(res.location).toMatch(/^\/admin\/messages\/\d+$/);
      });
      const kept = await (await fetch(`${stack.url}/admin/messages?control_id=DOWN-1`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json() as any;
      expect(kept.messages).toEqual([expect.objectContaining({ status: 'rejected', ack: 'AR', resources: [] })]);
      expect((await fhir.get(`Patient?identifier=${encodeURIComponent(PATIENT_SYSTEM)}|0000120099`)).body.total).toBe(0);
      const again = await raw(message('DOWN-1'));
      expect(again).toMatchObject({ status: 200, retryAfter: null, ack: { code: 'AA' } });
    });

    it('a message that cannot even be kept is AR 207 with 503 and Retry-After, and no Location', async () => {
      await failing('ingest_message', async () => {
        const res = await raw(message('DOWN-2'));
        expect(res).toMatchObject({ status: 503, retryAfter: '30', location: null, ack: { code: 'AR', control: 'DOWN-2' } });
        expect(res.ack.errors[0]).toMatch(/^ERR\|\|\|207\^/);
      });
      expect((await raw(message('DOWN-2'))).ack.code).toBe('AA');
    });
  });
});
