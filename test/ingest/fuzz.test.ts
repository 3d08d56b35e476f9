import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAck, fallbackAckHeader } from '../../src/ingest/hl7v2/ack.js';
import { decodeMessage } from '../../src/ingest/hl7v2/charset.js';
import { Hl7Error } from '../../src/ingest/hl7v2/errors.js';
import { mapMessage, readMessage } from '../../src/ingest/hl7v2/pipeline.js';
import { prepareCareRecords } from '../../src/ingest/care-records.js';
import { TableError } from '../../src/ingest/csv.js';
import { mappings } from '../../src/ingest/mappings.js';
import type { MllpListener } from '../../src/ingest/mllp.js';
import { MEDICAL_INSTITUTION_NO, senderFactsOf } from '../../src/ingest/sender.js';
import { mapTableRows } from '../../src/ingest/table-intake.js';
import { validateMapped } from '../../src/mapping/validate.js';
import { ADMIN_TOKEN, stackName, startTestStack, type TestStack } from '../support/stack.js';
import { mutatedMessage, sampleMessages } from './mutations.js';
import { ackOf, MllpClient, post, putOrganization, registerClient, startMllp } from './support.js';

const clinic = senderFactsOf('clinic-midori', { resourceType: 'Organization', identifier: [{ system: MEDICAL_INSTITUTION_NO, value: '1310000099' }] });

/** The whole pure path of a message: it either maps to valid resources or is refused with an Hl7Error. */
function throughParser(bytes: Buffer): 'mapped' | 'refused' {
  try {
    const output = mapMessage(readMessage(bytes), clinic, mappings());
    validateMapped(output.resources);
    return 'mapped';
  } catch (err) {
    if (err instanceof Hl7Error) {
      expect(err.problems.length).toBeGreaterThan(0);
      buildAck(fallbackAckHeader(bytes), err.ack, 'refused', err.problems);
      return 'refused';
    }
    throw err;
  }
}

describe('fuzzing the HL7 parser and mappings', () => {
  it('10,000 mutated messages: each is mapped or refused with an ERR, nothing else is thrown', () => {
    const seen = { mapped: 0, refused: 0 };
    fc.assert(fc.property(mutatedMessage, (bytes) => {
      seen[throughParser(bytes)]++;
    }), { numRuns: 10_000, seed: 20261105 });
    expect(seen.mapped).toBeGreaterThan(100);
    expect(seen.refused).toBeGreaterThan(1000);
  });

  it('arbitrary bytes are refused, never thrown', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
      const withHeader = Buffer.concat([Buffer.from('MSH|^~\\&|A|B|C|D|20261101||ADT^A08|X|P|2.5||||||'), Buffer.from(bytes)]);
      for (const input of [Buffer.from(bytes), withHeader]) {
        try {
          decodeMessage(input);
          throughParser(input);
        } catch (err) {
          if (!(err instanceof Hl7Error)) throw err;
        }
      }
    }), { numRuns: 2000, seed: 7 });
  });

  it('mutated care-record CSV rows are mapped or refused with line and column, nothing else is thrown', () => {
    const head = '記録日時,施設利用者ID,体温,血圧上,血圧下,脈拍,SpO2,主食摂取率,水分量ml,特記事項,急変\n';
    const cell = fc.oneof(fc.constantFrom('', '36.5', '３６．５', 'abc', '1e999', '-5', '2026-11-20T07:30:00+09:00', '2026/13/40', 'R-0042', '1', '2', '"'), fc.string({ maxLength: 8 }));
    fc.assert(fc.property(fc.array(fc.array(cell, { minLength: 9, maxLength: 12 }), { minLength: 1, maxLength: 4 }), (rows) => {
      const text = head + rows.map((r) => r.join(',')).join('\n');
      try {
        const prepared = prepareCareRecords(Buffer.from(text, 'utf8'), {});
        for (const output of mapTableRows(prepared, clinic, [{ reference: 'Organization/h' }]).values()) {
          for (const issue of output.issues) expect(issue.location.line).toBeGreaterThan(1);
        }
      } catch (err) {
        if (!(err instanceof TableError)) throw err;
      }
    }), { numRuns: 1000, seed: 11 });
  });
});

describe(`fuzzing the HTTP and MLLP paths (${stackName})`, () => {
  let stack: TestStack;
  let mllp: MllpListener;
  let token: string;

  beforeAll(async () => {
    stack = await startTestStack();
    mllp = await startMllp(stack);
    await putOrganization(stack, 'clinic-midori', [{ system: MEDICAL_INSTITUTION_NO, value: '1310000099' }]);
    const client = await registerClient(stack, 'clinic-midori');
    token = client.token;
    await fetch(`${stack.url}/admin/mllp-senders`, {
      method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ sending_facility: 'MIDORI', client_id: client.clientId }),
    });
  });
  afterAll(async () => {
    await mllp?.close();
    await stack?.stop();
  });

  it('300 mutated messages over HTTP: every answer is an HL7 ACK, never a 5xx', async () => {
    const codes = new Map<string, number>();
    for (const bytes of sampleMessages(300, 42)) {
      const res = await post(`${stack.url}/ingest/hl7v2`, token, bytes);
      expect(res.status, bytes.toString('latin1')).toBeLessThan(500);
      const code = ackOf(safeText(res.bytes)).code;
      expect(['AA', 'AE', 'AR']).toContain(code);
      expect(res.status === 200).toBe(code === 'AA');
      codes.set(code, (codes.get(code) ?? 0) + 1);
    }
    expect(codes.get('AR')).toBeGreaterThan(0);
  });

  it('300 mutated messages over one MLLP connection: one ACK each, in order, and the connection stays up', async () => {
    const messages = sampleMessages(300, 43).map((m) => Buffer.from(m.filter((b) => b !== 0x0b && b !== 0x1c)));
    const client = await MllpClient.connect(mllp.port);
    for (const m of messages) client.send(m);
    const acks = await client.receive(messages.length);
    expect(acks).toHaveLength(messages.length);
    for (const ack of acks) expect(['AA', 'AE', 'AR']).toContain(ackOf(safeText(ack)).code);
    client.send(Buffer.from('MSH|^~\\&|MIDORI-EMR|MIDORI|GW|R|20261201||ADT^A08|FUZZ-END|P|2.5||||||UNICODE UTF-8\rPID|1||F-1^^^^PI||終^了||19500101|F\r', 'utf8'));
    const [last] = (await client.receive(messages.length + 1)).slice(-1);
    expect(ackOf(safeText(last))).toMatchObject({ code: 'AA', control: 'FUZZ-END' });
    client.close();
    const stored = await fetch(`${stack.url}/admin/messages?_count=0`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(((await stored.json()) as { total: number }).total).toBe(300 + messages.length + 1);
  });
});

/** An ACK's text, whatever character set it came in. */
function safeText(bytes: Buffer): string {
  try {
    return decodeMessage(bytes).text;
  } catch {
    return bytes.toString('latin1');
  }
}
