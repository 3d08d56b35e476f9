import { ERROR_CODES, rejected } from './errors.js';
import { type Delimiters, unescapeText } from './escapes.js';

/**
 * An HL7 v2 message (ER7 encoding) after character decoding: segments split on CR (LF and CRLF are
 * accepted as files often carry them), fields on MSH-1, repetitions, components and sub-components on
 * MSH-2. Values are split and unescaped only when read, so parsing a message is one pass over its text.
 * Field numbers follow HL7: MSH-1 is the field separator itself, MSH-2 the encoding characters.
 */
export class Hl7Message {
  private constructor(
    readonly segments: Hl7Segment[],
    readonly delimiters: Delimiters,
  ) {}

  static parse(text: string): Hl7Message {
    const body = text.replace(/^[\uFEFF\s]+/, '');
    if (!body.startsWith('MSH') || body.length < 8) {
      throw rejected({}, ERROR_CODES.segmentSequence, 'The message must begin with an MSH segment / メッセージがMSHセグメントで始まっていません');
    }
    const delimiters = readDelimiters(body);
    const segments: Hl7Segment[] = [];
    for (const line of body.split(/\r\n|\r|\n/)) {
      if (!line.trim()) continue;
      const sequence = segments.length + 1;
      const name = line.slice(0, 3);
      if (!/^[A-Z][A-Z0-9]{2}$/.test(name) || (line.length > 3 && line[3] !== delimiters.field)) {
        throw rejected({ sequence }, ERROR_CODES.segmentSequence,
          `Segment ${sequence} does not begin with a segment id and "${delimiters.field}" / セグメント${sequence}の形式が正しくありません`);
      }
      if (name === 'MSH' && sequence > 1) {
        throw rejected({ segment: 'MSH', sequence }, ERROR_CODES.segmentSequence,
          'A second MSH segment: send one message at a time / 1メッセージに複数のMSHがあります');
      }
      segments.push(new Hl7Segment(name, sequence, splitFields(line, name, delimiters.field), delimiters));
    }
    return new Hl7Message(segments, delimiters);
  }

  get header(): Hl7Segment {
    return this.segments[0];
  }

  /** The first segment with this id, or undefined. */
  segment(name: string): Hl7Segment | undefined {
    return this.segments.find((s) => s.name === name);
  }

  all(name: string): Hl7Segment[] {
    return this.segments.filter((s) => s.name === name);
  }
}

function readDelimiters(body: string): Delimiters {
  const field = body[3];
  const end = body.indexOf(field, 4);
  const encoding = end < 0 ? body.slice(4) : body.slice(4, end);
  const chars = [field, ...encoding];
  const invalid = encoding.length < 3 || encoding.length > 5 || /[A-Za-z0-9\s]/.test(chars.join('')) || new Set(chars).size !== chars.length;
  if (invalid || /[\r\n]/.test(field)) {
    throw rejected({ segment: 'MSH', sequence: 1, field: 2 }, ERROR_CODES.dataType,
      `MSH-1/MSH-2 must give distinct delimiters such as |^~\\&, got "${field}${encoding}" / 区切り文字の指定が正しくありません`);
  }
  return { field, component: encoding[0], repetition: encoding[1], escape: encoding[2], subcomponent: encoding[3] ?? '&' };
}

function splitFields(line: string, name: string, separator: string): string[] {
  if (name !== 'MSH') return line.split(separator);
  // MSH-1 is the separator itself; MSH-2 the encoding characters (not split further).
  return ['MSH', separator, ...line.slice(4).split(separator)];
}

export class Hl7Segment {
  /** Field values made so far (a value is immutable: read once, kept for the next reader). */
  private readonly values: (Hl7Value | undefined)[] = [];

  constructor(
    readonly name: string,
    /** 1-based position in the message (ERR-2.2). */
    readonly sequence: number,
    /** fields[n] is field n as sent (fields[0] is the segment id). */
    readonly fields: string[],
    readonly delimiters: Delimiters,
  ) {}

  /** Field n (1-based) as an Hl7Value holding its repetitions. */
  field(n: number): Hl7Value {
    const known = this.values[n];
    if (known) return known;
    const raw = this.fields[n] ?? '';
    const value = this.name === 'MSH' && n <= 2 ? new Hl7Value(raw, LEVEL_LEAF, this.delimiters, true) : new Hl7Value(raw, LEVEL_FIELD, this.delimiters);
    this.values[n] = value;
    return value;
  }

  /** Text of field n, repetition 1, component c, sub-component s (unescaped). */
  text(n: number, c = 1, s = 1): string {
    return this.field(n).part(1).part(c).part(s).text;
  }
}

const LEVEL_FIELD = 0;
const LEVEL_REPETITION = 1;
const LEVEL_COMPONENT = 2;
const LEVEL_LEAF = 3;

/**
 * A value at one level of a field: the field (its parts are repetitions), a repetition (parts are
 * components), a component (parts are sub-components) or a sub-component. `text` is the first leaf,
 * unescaped: reading a composite where a primitive is expected gives its first component, as HL7 does.
 */
export class Hl7Value {
  /** The raw text of each part one level down, split when first read. */
  private pieces?: string[];
  /** The parts made so far, by 0-based index. */
  private made?: Hl7Value[];
  private unescaped?: string;

  constructor(
    readonly raw: string,
    private readonly level: number,
    private readonly delimiters: Delimiters,
    private readonly literal = false,
  ) {}

  private get separator(): string | undefined {
    if (this.literal) return undefined;
    const d = this.delimiters;
    return this.level === LEVEL_FIELD ? d.repetition : this.level === LEVEL_REPETITION ? d.component : this.level === LEVEL_COMPONENT ? d.subcomponent : undefined;
  }

  /** The sub-values one level down (repetitions, components or sub-components). */
  parts(): Hl7Value[] {
    const sep = this.separator;
    if (sep === undefined) return [this];
    const pieces = this.piecesOf(sep);
    const all: Hl7Value[] = [];
    for (let i = 0; i < pieces.length; i++) all.push(this.madePart(pieces, i));
    return all;
  }

  /** Part i (1-based) one level down; an empty value when absent. */
  part(i: number): Hl7Value {
    const sep = this.separator;
    if (sep === undefined) return i === 1 ? this : new Hl7Value('', LEVEL_LEAF, this.delimiters);
    const pieces = this.piecesOf(sep);
    return i <= pieces.length ? this.madePart(pieces, i - 1) : new Hl7Value('', this.level + 1, this.delimiters);
  }

  private piecesOf(sep: string): string[] {
    return (this.pieces ??= this.raw.includes(sep) ? this.raw.split(sep) : [this.raw]);
  }

  private madePart(pieces: string[], index: number): Hl7Value {
    const made = (this.made ??= []);
    return (made[index] ??= new Hl7Value(pieces[index], this.level + 1, this.delimiters));
  }

  get text(): string {
    if (this.literal) return this.raw;
    if (this.unescaped === undefined) {
      this.unescaped = this.level < LEVEL_LEAF ? this.part(1).text : unescapeText(this.raw, this.delimiters);
    }
    return this.unescaped;
  }

  /** No value: nothing sent, or only delimiters. */
  get isEmpty(): boolean {
    return this.raw === '' || (!this.literal && !this.hasContent());
  }

  /** HL7's explicit null `""`: the receiver is to delete the value. */
  get isNull(): boolean {
    return this.raw === '""';
  }

  private hasContent(): boolean {
    const d = this.delimiters;
    const raw = this.raw;
    for (let i = 0; i < raw.length; i++) {
      const c = raw[i];
      if (c !== d.repetition && c !== d.component && c !== d.subcomponent) return true;
    }
    return false;
  }
}
