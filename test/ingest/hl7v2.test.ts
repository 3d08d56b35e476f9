import iconv from 'iconv-lite';
import { describe, expect, it } from 'vitest';
import { buildAck, fallbackAckHeader, ackHeaderOf } from '../../src/ingest/hl7v2/ack.js';
import { charsetOf, decodeMessage } from '../../src/ingest/hl7v2/charset.js';
import { Hl7Error } from '../../src/ingest/hl7v2/errors.js';
import { escapeText, STANDARD_DELIMITERS, unescapeText } from '../../src/ingest/hl7v2/escapes.js';
import { readHeader } from '../../src/ingest/hl7v2/header.js';
import { encodeIso2022jp, iso2022jpFault } from '../../src/ingest/hl7v2/iso2022jp.js';
import { Hl7Message } from '../../src/ingest/hl7v2/message.js';
import { mapMessage, readMessage } from '../../src/ingest/hl7v2/pipeline.js';
import { mappings } from '../../src/ingest/mappings.js';
import { frame, MllpDecoder } from '../../src/ingest/mllp-framing.js';
import { senderFactsOf } from '../../src/ingest/sender.js';

const msh = (charset: string, type = 'ADT^A08^ADT_A01', control = 'C1', time = '20261104120000') =>
  `MSH|^~\\&|EMR|FAC|GW|RENKEI|${time}||${type}|${control}|P|2.5||||||${charset}||${charset.includes('IR87') ? 'ISO 2022-1994' : ''}`;
const PID = 'PID|0001||0000120034^^^^PI||山田^太郎^^^^^L^I~ヤマダ^タロウ^^^^^L^P||19350710|M';
const message = (charset: string, ...segments: string[]) => [msh(charset), ...segments].join('\r') + '\r';

function refusal(fn: () => unknown): Hl7Error {
  try {
    fn();
  } catch (err) {
    if (err instanceof Hl7Error) return err;
    throw err;
  }
  throw new Error('expected an Hl7Error');
}

describe('MSH-18 character sets', () => {
  it('names ISO-2022-JP with or without the space, UTF-8, Shift_JIS and the ASCII default', () => {
    expect(charsetOf('~ISO IR87')).toBe('iso-2022-jp');
    expect(charsetOf('~ISOIR87')).toBe('iso-2022-jp');
    expect(charsetOf('ISO IR87')).toBe('iso-2022-jp');
    expect(charsetOf('ISO IR6~ISO IR87')).toBe('iso-2022-jp');
    expect(charsetOf('UNICODE UTF-8')).toBe('utf-8');
    expect(charsetOf('SHIFT_JIS')).toBe('shift_jis');
    expect(charsetOf('MS932')).toBe('shift_jis');
    expect(charsetOf('')).toBe('ascii');
    expect(charsetOf('8859/1')).toBeUndefined();
    expect(charsetOf('UNICODE UTF-8~ISO IR87')).toBeUndefined();
  });

  it('decodes the same Japanese text from each character set', () => {
    const text = message('~ISO IR87', PID);
    for (const [declared, bytes] of [
      ['~ISO IR87', encodeIso2022jp(text)],
      ['~ISOIR87', encodeIso2022jp(text.replace('~ISO IR87', '~ISOIR87'))],
      ['UNICODE UTF-8', Buffer.from(text.replace('~ISO IR87', 'UNICODE UTF-8'), 'utf8')],
      ['SHIFT_JIS', iconv.encode(text.replace('~ISO IR87', 'SHIFT_JIS'), 'cp932')],
    ] as const) {
      const decoded = decodeMessage(bytes);
      expect(decoded.declared).toBe(declared);
      expect(Hl7Message.parse(decoded.text).segment('PID')!.text(5, 1)).toBe('山田');
    }
  });

  it('keeps NEC special characters, IBM kanji and half-width katakana intact', () => {
    const text = message('~ISO IR87', 'PID|0001||1^^^^PI||髙橋^①郎^^^^^L^I~ﾀｶﾊｼ^ｲﾁﾛｳ^^^^^L^P');
    const sjis = decodeMessage(iconv.encode(text.replace('~ISO IR87', 'SHIFT_JIS'), 'cp932'));
    expect(Hl7Message.parse(sjis.text).segment('PID')!.text(5, 2)).toBe('①郎');
    const jis = decodeMessage(encodeIso2022jp(text));
    expect(Hl7Message.parse(jis.text).segment('PID')!.text(5, 2)).toBe('①郎');
    const kana = decodeMessage(encodeIso2022jp(message('~ISO IR87', 'PID|0001||1^^^^PI||ﾀｶﾊｼ^ｲﾁﾛｳ')));
    expect(Hl7Message.parse(kana.text).segment('PID')!.text(5, 1)).toBe('ﾀｶﾊｼ');
  });

  it('refuses bytes that do not match the declared character set, naming segment and field', () => {
    const utf8AsJis = refusal(() => decodeMessage(Buffer.from(message('~ISO IR87', PID), 'utf8')));
    expect(utf8AsJis.ack).toBe('AR');
    expect(utf8AsJis.problems[0].location).toMatchObject({ segment: 'PID', sequence: 2, field: 5 });
    const sjisAsUtf8 = refusal(() => decodeMessage(iconv.encode(message('UNICODE UTF-8', PID), 'cp932')));
    expect(sjisAsUtf8.problems[0].reason).toMatch(/not valid utf-8/);
    const undeclared = refusal(() => decodeMessage(Buffer.from(message('', PID), 'utf8')));
    expect(undeclared.problems[0].reason).toMatch(/declares no character set/);
    const unknown = refusal(() => decodeMessage(Buffer.from(message('8859/1', 'PID|1'), 'latin1')));
    expect(unknown.problems[0]).toMatchObject({ code: '103', location: { segment: 'MSH', field: 18 } });
  });

  it('refuses a NUL byte in any character set, naming where it is', () => {
    for (const [charset, encode] of [['UNICODE UTF-8', (t: string) => Buffer.from(t, 'utf8')], ['SHIFT_JIS', (t: string) => iconv.encode(t, 'cp932')]] as const) {
      const nul = refusal(() => decodeMessage(encode(message(charset, PID.replace('0000120034', '00001\u000020034')))));
      expect(nul.ack, charset).toBe('AR');
      expect(nul.problems[0], charset).toMatchObject({ code: '102', location: { segment: 'PID', sequence: 2, field: 3 } });
      expect(nul.problems[0].reason, charset).toMatch(/NUL byte/);
    }
  });

  it('finds broken ISO-2022-JP: 8-bit bytes, a line ending inside a 2-byte run, an unknown escape', () => {
    expect(iso2022jpFault(Buffer.from('AB\x1b$B;3\x1b(B', 'latin1'))).toBeUndefined();
    expect(iso2022jpFault(Buffer.from('AB\x1b$B;3\rED\x1b(B', 'latin1'))?.reason).toMatch(/line ends inside/);
    expect(iso2022jpFault(Buffer.from('AB\xe5', 'latin1'))?.offset).toBe(2);
    expect(iso2022jpFault(Buffer.from('AB\x1b$Z', 'latin1'))?.reason).toMatch(/unknown/);
    expect(iso2022jpFault(Buffer.from('AB\x1b$B;3', 'latin1'))?.reason).toMatch(/returning to ASCII/);
  });
});

describe('HL7 escape sequences', () => {
  it('decodes \\F\\ \\S\\ \\T\\ \\R\\ \\E\\, line breaks and hex data, and keeps what is not an escape', () => {
    const d = STANDARD_DELIMITERS;
    expect(unescapeText('A\\F\\B\\S\\C\\T\\D\\R\\E\\E\\', d)).toBe('A|B^C&D~E\\');
    expect(unescapeText('一行目\\.br\\二行目', d)).toBe('一行目\n二行目');
    expect(unescapeText('\\X414243\\', d)).toBe('ABC');
    expect(unescapeText('\\X41004200\\', d), 'NUL bytes of hex data are dropped').toBe('AB');
    expect(unescapeText('\\H\\強調\\N\\', d)).toBe('強調');
    expect(unescapeText('a\\b', d)).toBe('a\\b');
    expect(unescapeText('trailing\\', d)).toBe('trailing\\');
    expect(escapeText('A|B^C&D~E\\\r\n改行')).toBe('A\\F\\B\\S\\C\\T\\D\\R\\E\\E\\\\.br\\改行');
    expect(unescapeText(escapeText('|^&~\\ 混在\n'), d)).toBe('|^&~\\ 混在\n');
  });

  it('applies to components and sub-components, with delimiters from MSH-2', () => {
    const parsed = Hl7Message.parse('MSH#$%@!#EMR#F#G#R#20261104##ADT$A08#1#P#2.5\rAL1#1#DA#3$セフェム@T@ペニシリン$99X#SV');
    expect(parsed.delimiters).toMatchObject({ field: '#', component: '$', repetition: '%', escape: '@', subcomponent: '!' });
    expect(parsed.segment('AL1')!.text(3, 2)).toBe('セフェム!ペニシリン');
  });
});

describe('message structure', () => {
  it('reads repetitions, components and sub-components (TQ1-3 is a CWE inside a repeat)', () => {
    const parsed = Hl7Message.parse(message('', 'TQ1|1||1013044400000000&TEXT&JAMISDP01|||28^D&DAY&ISO+|20261105', 'PID|1||A~B~C'));
    const tq1 = parsed.segment('TQ1')!;
    expect(tq1.field(3).part(1).part(1).part(3).text).toBe('JAMISDP01');
    expect(tq1.field(6).part(1).part(2).part(2).text).toBe('DAY');
    expect(parsed.segment('PID')!.field(3).parts().map((p) => p.text)).toEqual(['A', 'B', 'C']);
    expect(parsed.header.text(9, 2)).toBe('A08');
    expect(parsed.header.field(2).text).toBe('^~\\&');
  });

  it('accepts LF and CRLF segment ends and Z segments; refuses what is not a message', () => {
    expect(Hl7Message.parse(`${msh('')}\nZPR|1\r\nPID|1`).segments.map((s) => s.name)).toEqual(['MSH', 'ZPR', 'PID']);
    expect(refusal(() => Hl7Message.parse('PID|1')).problems[0].code).toBe('100');
    expect(refusal(() => Hl7Message.parse(`${msh('')}\rpid|1`)).problems[0].location).toEqual({ sequence: 2 });
    expect(refusal(() => Hl7Message.parse('MSH|^^^^|x')).problems[0].location).toMatchObject({ field: 2 });
    expect(refusal(() => Hl7Message.parse(`${msh('')}\r${msh('')}`)).problems[0].reason).toMatch(/second MSH/);
  });

  it('reads the header: type, control id, time with +09:00, version and processing id', () => {
    const facts = readHeader(Hl7Message.parse(message('')));
    expect(facts).toMatchObject({ type: 'ADT^A08', controlId: 'C1', time: '2026-11-04T12:00:00+09:00', sendingFacility: 'FAC' });
    expect(facts.timeValue.toISOString()).toBe('2026-11-04T03:00:00.000Z');
    const noControl = refusal(() => readHeader(Hl7Message.parse(message('').replace('|C1|', '||'))));
    expect(noControl.problems[0]).toMatchObject({ code: '101', location: { segment: 'MSH', field: 10 } });
    const badTime = refusal(() => readHeader(Hl7Message.parse(msh('', 'ADT^A08', 'C2', '20261399'))));
    expect(badTime).toMatchObject({ ack: 'AE' });
    expect(badTime.problems[0].location).toMatchObject({ field: 7 });
    const v3 = refusal(() => readHeader(Hl7Message.parse(message('').replace('|2.5|', '|3.0|'))));
    expect(v3.problems[0].code).toBe('203');
  });
});

describe('mapping refusals name segment, field and reason', () => {
  const clinic = senderFactsOf('clinic-a');
  const map = (text: string) => mapMessage(readMessage(Buffer.from(text, 'utf8')), clinic, mappings());

  it('an unknown message type is AR 200, an unknown trigger of a known type AR 201', () => {
    expect(refusal(() => map([msh('UNICODE UTF-8', 'ORU^R01')].join('\r'))).problems[0]).toMatchObject({ code: '200' });
    const a99 = refusal(() => map([msh('UNICODE UTF-8', 'ADT^A99'), PID].join('\r')));
    expect(a99).toMatchObject({ ack: 'AR' });
    expect(a99.problems[0]).toMatchObject({ code: '201', location: { segment: 'MSH', field: 9 } });
  });

  it('missing required fields, bad dates and values outside a table are AE with their location', () => {
    const err = refusal(() => map([msh('UNICODE UTF-8'), 'PID|0001||0000120034^^^^PI||山田^太郎||19351310|X'].join('\r')));
    expect(err.ack).toBe('AE');
    const byField = Object.fromEntries(err.problems.map((p) => [`${p.location.segment}-${p.location.field}`, p.code]));
    expect(byField).toEqual({ 'PID-7': '102', 'PID-8': '103' });
    const noId = refusal(() => map([msh('UNICODE UTF-8'), 'PID|0001||||山田^太郎||19350710|M'].join('\r')));
    expect(noId.problems[0]).toMatchObject({ code: '101', location: { segment: 'PID', sequence: 2, field: 3 } });
  });

  it('an unsupported order control names ORC-1', () => {
    const err = refusal(() => map([msh('UNICODE UTF-8', 'RDE^O11'), PID, 'ORC|SC|A-1'].join('\r')));
    expect(err.problems[0]).toMatchObject({ code: '103', location: { segment: 'ORC', sequence: 3, field: 1 } });
  });
});

describe('acknowledgments', () => {
  it('swap sender and receiver, echo MSH-10 and MSH-18, list ERR segments, encode in the message charset', () => {
    const parsed = Hl7Message.parse(message('~ISO IR87', PID));
    const header = ackHeaderOf(parsed, 'iso-2022-jp', '~ISO IR87');
    const ack = buildAck(header, 'AE', 'エラー', [{ location: { segment: 'PID', sequence: 2, field: 7 }, code: '102', reason: '日付が不正 | bad' }], new Date('2026-11-04T03:00:00Z'));
    const [ackMsh, msa, err] = ack.text.split('\r');
    expect(ackMsh).toMatch(/^MSH\|\^~\\&\|GW\|RENKEI\|EMR\|FAC\|20261104120000\+0900\|\|ACK\^A08\^ACK\|RK\w+\|P\|2\.5\|\|\|\|\|\|~ISO IR87$/);
    expect(msa).toBe('MSA|AE|C1|エラー');
    expect(err).toBe('ERR||PID^2^7|102^Data type error^HL70357|E||||日付が不正 \\F\\ bad');
    expect(iso2022jpFault(ack.bytes)).toBeUndefined();
    expect(decodeMessage(ack.bytes).text).toBe(ack.text);
  });

  it('can answer a message that could not be read, from its ASCII header fields', () => {
    const header = fallbackAckHeader(Buffer.from('\x0bMSH|^~\\&|EMR|FAC|GW|R|2026||ADT^A08|CTRL-9|P|2.5\r\xff\xfe', 'latin1').subarray(1));
    expect(header).toMatchObject({ sendingApplication: 'EMR', sendingFacility: 'FAC', controlId: 'CTRL-9', trigger: 'A08', charset: 'utf-8' });
    expect(buildAck(header, 'AR', 'Rejected').text.split('\r')[1]).toBe('MSA|AR|CTRL-9|Rejected');
  });
});

describe('MLLP framing', () => {
  const a = Buffer.from('MSH|A');
  const b = Buffer.from('MSH|B');

  it('splits several frames in one chunk and joins a frame split across chunks', () => {
    const decoder = new MllpDecoder(1024);
    const both = Buffer.concat([frame(a), frame(b)]);
    expect(decoder.push(both).map((e) => e.type === 'frame' && e.bytes.toString())).toEqual(['MSH|A', 'MSH|B']);
    const parts = [both.subarray(0, 3), both.subarray(3, 8), both.subarray(8)];
    const events = parts.flatMap((p) => decoder.push(p));
    expect(events.map((e) => e.type === 'frame' && e.bytes.toString())).toEqual(['MSH|A', 'MSH|B']);
    expect(new MllpDecoder(1024).push(Buffer.concat([Buffer.from('noise\r\n'), frame(a)])).length).toBe(1);
  });

  it('reports a frame over the limit once, keeps its head, and reads the next frame normally', () => {
    const decoder = new MllpDecoder(8);
    const big = frame(Buffer.from('MSH|0123456789ABCDEF'));
    const events = [...decoder.push(big.subarray(0, 10)), ...decoder.push(big.subarray(10)), ...decoder.push(frame(a))];
    expect(events.map((e) => e.type)).toEqual(['oversize', 'frame']);
    expect(events[0].type === 'oversize' && events[0].head.toString()).toBe('MSH|0123456789ABCDEF'.slice(0, 8));
  });

  it('drops an unfinished frame when a new one starts', () => {
    const decoder = new MllpDecoder(1024);
    const events = decoder.push(Buffer.concat([Buffer.from([0x0b]), Buffer.from('MSH|broken'), frame(b)]));
    expect(events.map((e) => e.type === 'frame' && e.bytes.toString())).toEqual(['MSH|B']);
  });
});
