import type { TransformDefinition } from './types.js';
import { needsString, normalizeDigits, stringArg, textOf, TransformError } from './types.js';

/** Plain values: text, identifiers, joined text, and the 頻度 (frequency) text of a care plan as Timing. */

/** The text as sent (unescaped, trimmed); args.maxLength refuses longer text. */
export const text: TransformDefinition = {
  inputs: [1, 1],
  apply: ([v], args) => {
    const value = textOf(v);
    if (!value) return undefined;
    if (typeof args.maxLength === 'number' && [...value].length > args.maxLength) {
      throw new TransformError(`the text is longer than ${args.maxLength} characters / 文字数が多すぎます`);
    }
    return value;
  },
};

/** args.system (and args.type as text): value → Identifier. args.prefix is put before the value. */
export const identifier: TransformDefinition = {
  inputs: [1, 1],
  checkArgs: needsString('system'),
  apply: ([v], args) => {
    const value = textOf(v);
    if (!value) return undefined;
    return { system: stringArg(args, 'system'), value: `${stringArg(args, 'prefix') ?? ''}${value}` };
  },
};

/** Several values joined with args.separator (default one space). */
export const join: TransformDefinition = {
  inputs: [1, 8],
  apply: (inputs, args) => {
    const parts = inputs.map(textOf).filter(Boolean);
    return parts.length ? parts.join(stringArg(args, 'separator') ?? ' ') : undefined;
  },
};

const DAYS: Record<string, string> = { 月: 'mon', 火: 'tue', 水: 'wed', 木: 'thu', 金: 'fri', 土: 'sat', 日: 'sun' };

interface Repeat {
  frequency?: number;
  period?: number;
  periodUnit?: string;
  dayOfWeek?: string[];
}

/** Reads the common ways a care plan's 頻度 is written; undefined for anything else (the text is kept). */
export function parseFrequency(raw: string): Repeat | undefined {
  const t = normalizeDigits(raw).replace(/\s/g, '');
  let m: RegExpExecArray | null;
  if (/^(毎日|1日1回|日1回)$/.test(t)) return { frequency: 1, period: 1, periodUnit: 'd' };
  if ((m = /^(?:毎日|1日|日)(\d+)回$/.exec(t))) return { frequency: Number(m[1]), period: 1, periodUnit: 'd' };
  if ((m = /^(?:週|1週|毎週)(\d+)(?:回|日)$/.exec(t))) return { frequency: Number(m[1]), period: 1, periodUnit: 'wk' };
  if ((m = /^(\d+)週(?:に|で)?(\d+)回$/.exec(t))) return { frequency: Number(m[2]), period: Number(m[1]), periodUnit: 'wk' };
  if ((m = /^隔週(\d+)?回?$/.exec(t))) return { frequency: Number(m[1] ?? 1), period: 2, periodUnit: 'wk' };
  if ((m = /^(?:月|1月|毎月|1か月|1ヶ月)(\d+)回$/.exec(t))) return { frequency: Number(m[1]), period: 1, periodUnit: 'mo' };
  if ((m = /^(?:毎週)?([月火水木金土日](?:[・、,/][月火水木金土日])*)(?:曜日?)?$/.exec(t))) {
    return { frequency: 1, period: 1, periodUnit: 'd', dayOfWeek: m[1].split(/[・、,/]/).map((d) => DAYS[d]) };
  }
  return undefined;
}

/** 頻度 text → Timing: the text always kept in code.text, repeat added where the text parses. */
export const frequencyTiming: TransformDefinition = {
  inputs: [1, 1],
  apply: ([v]) => {
    const value = textOf(v);
    if (!value) return undefined;
    const repeat = parseFrequency(value);
    return { ...(repeat ? { repeat } : {}), code: { text: value } };
  },
};
