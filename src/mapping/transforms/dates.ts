import type { TransformDefinition } from './types.js';
import { normalizeDigits, textOf, TransformError } from './types.js';

/**
 * Dates and times. HL7 TS (YYYY[MM[DD[HH[MM[SS[.S]]]]]][+ZZZZ]) and the ISO / slash forms CSV exports
 * use (2026-11-20T07:30:00+09:00, 2026/11/20 7:30) become FHIR date / dateTime / instant; a time
 * without an offset is Japan time (+09:00). The precision sent is kept; impossible dates are refused.
 */

interface Parts {
  year: string;
  month?: string;
  day?: string;
  hour?: string;
  minute?: string;
  second?: string;
  fraction?: string;
  offset?: string;
}

const HL7_TS = /^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\.\d{1,4})?([+-]\d{4})?$/;
const ISO_LIKE = /^(\d{4})[-/](\d{1,2})(?:[-/](\d{1,2})(?:[T\s]+(\d{1,2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?)?)?\s*(Z|[+-]\d{2}:?\d{2})?$/;

function parse(raw: string): Parts {
  const text = normalizeDigits(raw);
  const hl7 = HL7_TS.exec(text);
  const m = hl7 ?? ISO_LIKE.exec(text);
  if (!m) throw new TransformError(`"${raw}" is not a date/time (HL7 TS such as 20261105101530 or 2026-11-05T10:15:30+09:00) / 日時の形式が正しくありません`);
  const [, year, month, day, hour, minute, second, fraction, offset] = m;
  const parts: Parts = {
    year,
    month: month?.padStart(2, '0'),
    day: day?.padStart(2, '0'),
    hour: hour?.padStart(2, '0'),
    minute,
    second,
    fraction: fraction?.slice(0, 4),
    offset: offset === 'Z' ? '+00:00' : offset ? `${offset.slice(0, 3)}:${offset.slice(-2)}` : undefined,
  };
  check(parts, raw);
  return parts;
}

function check(p: Parts, raw: string): void {
  const bad = (what: string) => new TransformError(`"${raw}": ${what} is out of range / 日時の値が正しくありません`);
  const month = Number(p.month ?? 1);
  if (month < 1 || month > 12) throw bad('month');
  if (p.day !== undefined) {
    const last = new Date(Date.UTC(Number(p.year), month, 0)).getUTCDate();
    if (Number(p.day) < 1 || Number(p.day) > last) throw bad('day');
  }
  if (p.hour !== undefined && Number(p.hour) > 23) throw bad('hour');
  if (p.minute !== undefined && Number(p.minute) > 59) throw bad('minute');
  if (p.second !== undefined && Number(p.second) > 59) throw bad('second');
  if (p.offset && (Number(p.offset.slice(1, 3)) > 14 || Number(p.offset.slice(4)) > 59)) throw bad('time zone');
  if (Number(p.year) < 1800) throw bad('year');
}

function formatDate(p: Parts): string {
  return [p.year, p.month, p.day].filter(Boolean).join('-');
}

export function toDateTime(raw: string): string {
  const p = parse(raw);
  if (p.hour === undefined || p.day === undefined) return formatDate(p);
  return `${formatDate(p)}T${p.hour}:${p.minute ?? '00'}:${p.second ?? '00'}${p.fraction ?? ''}${p.offset ?? '+09:00'}`;
}

export function toDate(raw: string): string {
  return formatDate(parse(raw));
}

/** dateTime: the precision sent (date only stays a date). */
export const dateTime: TransformDefinition = {
  inputs: [1, 1],
  apply: ([v]) => (textOf(v) ? toDateTime(textOf(v)) : undefined),
};

/** date: the date part only (birthDate, a plan's start…). */
export const date: TransformDefinition = {
  inputs: [1, 1],
  apply: ([v]) => (textOf(v) ? toDate(textOf(v)) : undefined),
};

/** instant: needs a time; a date alone gives nothing (instant cannot hold it). */
export const instant: TransformDefinition = {
  inputs: [1, 1],
  apply: ([v]) => {
    const text = textOf(v);
    if (!text) return undefined;
    const value = toDateTime(text);
    return value.includes('T') ? value : undefined;
  },
};

/** A period written `start-end` (20261101-20270430, 2026/11/01～2027/04/30) or a start alone. */
export const period: TransformDefinition = {
  inputs: [1, 1],
  apply: ([v]) => {
    const text = normalizeDigits(textOf(v));
    if (!text) return undefined;
    const m = /^(.+?)\s*(?:[~〜]|-(?=\d{8}$)|から|\s-\s)\s*(.*)$/.exec(text) ?? /^(\d{8})-(\d{8})?$/.exec(text);
    const [startText, endText] = m ? [m[1], m[2]] : [text, ''];
    const start = toDate(startText);
    const end = endText ? toDate(endText) : undefined;
    if (end && end < start) throw new TransformError(`"${textOf(v)}": the period ends before it starts / 期間の終了が開始より前です`);
    return end ? { start, end } : { start };
  },
};

/** The start date of a period text (see period). */
export const periodStart: TransformDefinition = {
  inputs: [1, 1],
  apply: (inputs, args, ctx) => (period.apply(inputs, args, ctx) as { start?: string } | undefined)?.start,
};

/** The end date of a period text, if it has one. */
export const periodEnd: TransformDefinition = {
  inputs: [1, 1],
  apply: (inputs, args, ctx) => (period.apply(inputs, args, ctx) as { end?: string } | undefined)?.end,
};
