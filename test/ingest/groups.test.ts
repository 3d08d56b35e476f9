import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MEDICAL_INSTITUTION_NO } from '../../src/ingest/sender.js';
import { FhirClient } from '../support/fhir-client.js';
import { stackName, startTestStack, type TestStack } from '../support/stack.js';
import { ackOf, post, registerSender } from './support.js';

// Messages of concurrent senders are applied in shared transactions (src/ingest/apply-group.ts); each
// must still get the outcome it would get alone.
const PATIENT_SYSTEM = 'urn:oid:1.2.392.100495.20.3.51.11310000077';
const MSH = (control: string, time: string) =>
  `MSH|^~\\&|AOI-EMR|AOI|GW|RENKEI|${time}||ADT^A08^ADT_A01|${control}|P|2.5||||||UNICODE UTF-8`;
const PID = (patientNo: string, address: string) =>
  `PID|0001||${patientNo}^^^^PI||青井^花子^^^^^L^I~アオイ^ハナコ^^^^^L^P||19400101|F|||^^^^1000001^JPN^H^${address}`;
const adt = (control: string, patientNo: string, time = '20261201090000', address = '東京都千代田区千代田１番') =>
  Buffer.from(`${MSH(control, time)}\r${PID(patientNo, address)}\r`, 'utf8');

describe(`HL7 v2 messages applied together (${stackName})`, () => {
  let stack: TestStack;
  let token: string;
  let fhir: FhirClient;
  const send = (body: Buffer) => post(`${stack.url}/ingest/hl7v2`, token, body);
  const patients = async (patientNo: string) =>
    (await fhir.get(`Patient?identifier=${encodeURIComponent(PATIENT_SYSTEM)}|${patientNo}`)).body.entry?.map((e: any) => e.resource) ?? [];
  /** Apply transactions so far, and how many of them carried a single message. */
  const groups = async () => {
    const text = await (await fetch(`${stack.url}/metrics`)).text();
    const value = (line: RegExp) => Number(text.split('\n').find((l) => line.test(l))?.split(' ').pop() ?? 0);
    return { all: value(/^renkei_ingest_group_messages_count /), single: value(/^renkei_ingest_group_messages_bucket\{le="1"\} /) };
  };

  beforeAll(async () => {
    stack = await startTestStack();
    token = await registerSender(stack, 'clinic-aoi', MEDICAL_INSTITUTION_NO, '1310000077');
    fhir = new FhirClient(stack.url, token);
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('answers each of many messages sent at once with its own outcome; one refused does not fail the others', async () => {
    // Two of the sender's Patients carry one identifier: a message about it is ambiguous and refused.
    for (let i = 0; i < 2; i++) {
      expect((await fhir.post('Patient', { resourceType: 'Patient', identifier: [{ system: PATIENT_SYSTEM, value: '0000770999' }] })).status).toBe(201);
    }
    const before = await groups();
    const numbers = Array.from({ length: 24 }, (_, i) => `00007700${String(i).padStart(2, '0')}`);
    const answers = await Promise.all([
      ...numbers.map((no, i) => send(adt(`GRP-${i}`, no))),
      send(adt('GRP-AMBIGUOUS', '0000770999')),
    ]);
    const acks = answers.map((a) => ackOf(a.text));
    expect(acks.slice(0, 24).map((a) => a.code)).toEqual(numbers.map(() => 'AA'));
    expect(acks[24].code).toBe('AE');
    expect(acks[24].errors.join()).toContain('0000770999');
    for (const no of numbers) expect((await patients(no)).map((p: any) => p.address[0].text)).toEqual(['東京都千代田区千代田１番']);
    expect(await patients('0000770999')).toHaveLength(2);

    const after = await groups();
    expect(after.all - before.all).toBeLessThan(25); // fewer transactions than messages
    expect(after.all - before.all).toBeGreaterThan(after.single - before.single); // some carried several
  });

  it('applies messages about one patient sent at once by message time: the newer one stays', async () => {
    for (let round = 0; round < 4; round++) {
      const no = `000077110${round}`;
      const older = adt(`OLD-${round}`, no, '20261201090000', '旧住所');
      const newer = adt(`NEW-${round}`, no, '20261201100000', '新住所');
      const others = Array.from({ length: 6 }, (_, i) => send(adt(`OTH-${round}-${i}`, `00007712${round}${i}`)));
      const pair = round % 2 ? [send(newer), send(older)] : [send(older), send(newer)];
      const acks = (await Promise.all([...pair, ...others])).map((a) => ackOf(a.text).code);
      expect(acks).toEqual(acks.map(() => 'AA'));
      const [patient] = await patients(no);
      expect(patient.address[0].text).toBe('新住所');
    }
  });

  it('keeps one of several copies sent at once (same MSH-10) and answers the others as duplicates', async () => {
    const copy = () => send(adt('COPY-1', '0000771300'));
    const answers = await Promise.all([copy(), copy(), copy(),
      ...Array.from({ length: 6 }, (_, i) => send(adt(`NEAR-COPY-${i}`, `00007714${i}0`)))]);
    const texts = answers.map((a) => a.text);
    expect(answers.map((a) => ackOf(a.text).code)).toEqual(answers.map(() => 'AA'));
    const copies = texts.slice(0, 3);
    expect(copies.filter((t) => t.includes('Duplicate of message'))).toHaveLength(2);
    expect(texts.slice(3).every((t) => t.includes('Accepted: 1 written'))).toBe(true);
    const [patient] = await patients('0000771300');
    expect(patient.meta.versionId).toBe('1');
  });
});
