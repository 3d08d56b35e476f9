import type { SourceValue } from '../source.js';
import { Choice } from '../target.js';
import { toDateTime } from './dates.js';
import type { Args, TransformContext, TransformDefinition } from './types.js';
import { decimalOf, normalizeDigits, present, stringArg, textOf, TransformError } from './types.js';

/**
 * Amounts: Quantity (value + unit as CE, MERIT-9 or UCUM), Duration (HL7 time units → UCUM), the
 * 1日量 ratio (per day), reference ranges, and an OBX value by its value type (NM, SN, ST, CWE, DT…).
 */

const UCUM = 'http://unitsofmeasure.org';

interface Unit {
  unit?: string;
  system?: string;
  code?: string;
}

/** A unit given as CE (code^text^system) or, in a sub-component position, code&text&system. */
function unitOf(ce: SourceValue | undefined, args: Args, ctx: TransformContext): Unit {
  if (typeof args.unit === 'string') {
    return { unit: args.unit, system: stringArg(args, 'unitSystem') ?? UCUM, code: stringArg(args, 'unitCode') ?? args.unit };
  }
  if (!ce) return {};
  const code = textOf(ce.part(1));
  const text = textOf(ce.part(2));
  if (!code && !text) return {};
  const system = ctx.codeSystems.resolve(textOf(ce.part(3)), code, args.systems as Record<string, string> | undefined);
  return system && code ? { unit: text || code, system, code } : { unit: text || code };
}

function quantityOf(value: SourceValue, unit: SourceValue | undefined, args: Args, ctx: TransformContext, what: string) {
  const text = textOf(value);
  if (!text) return undefined;
  const number = decimalOf(text, what);
  checkRange(number, args, text);
  return { value: number, ...unitOf(unit, args, ctx) };
}

function checkRange(value: number, args: Args, text: string): void {
  if (typeof args.min === 'number' && value < args.min) throw new TransformError(`${text} is below ${args.min} / 値が小さすぎます`);
  if (typeof args.max === 'number' && value > args.max) throw new TransformError(`${text} is above ${args.max} / 値が大きすぎます`);
}

/** [value, unit CE] → Quantity; or args.unit (UCUM unless args.unitSystem) for a fixed unit. args.min/max bound it. */
export const quantity: TransformDefinition = {
  inputs: [1, 2],
  apply: ([value, unit], args, ctx) => quantityOf(value, unit, args, ctx, 'quantity'),
};

/** A number alone (args.min/max bound it). */
export const decimal: TransformDefinition = {
  inputs: [1, 1],
  apply: ([v], args) => {
    const text = textOf(v);
    if (!text) return undefined;
    const value = decimalOf(text, 'decimal');
    checkRange(value, args, text);
    return value;
  },
};

export const integer: TransformDefinition = {
  inputs: [1, 1],
  apply: ([v]) => {
    const text = textOf(v);
    if (!text) return undefined;
    const value = decimalOf(text, 'integer');
    if (!Number.isInteger(value)) throw new TransformError(`"${text}" is not a whole number / 整数ではありません`);
    return value;
  },
};

const TIME_UNITS: Record<string, [code: string, display: string]> = {
  S: ['s', '秒'], SEC: ['s', '秒'], MIN: ['min', '分'], M: ['min', '分'], H: ['h', '時間'], HR: ['h', '時間'],
  D: ['d', '日'], DAY: ['d', '日'], W: ['wk', '週'], WK: ['wk', '週'], MO: ['mo', '月'], Y: ['a', '年'], A: ['a', '年'],
  日: ['d', '日'], 週: ['wk', '週'], 月: ['mo', '月'], 年: ['a', '年'],
};

/** [value, time unit] (TQ1-6 `28^D&日&ISO+`) → Duration in UCUM; days when no unit is sent. */
export const duration: TransformDefinition = {
  inputs: [1, 2],
  apply: ([value, unit]) => {
    const text = textOf(value);
    if (!text) return undefined;
    const number = decimalOf(text, 'duration');
    const unitCode = textOf(unit?.part(1)).toUpperCase() || 'D';
    const known = TIME_UNITS[unitCode] ?? TIME_UNITS[textOf(unit?.part(2))];
    if (!known) throw new TransformError(`"${unitCode}" is not a time unit (S, MIN, H, D, WK, MO, A) / 期間の単位が正しくありません`, 'table-value');
    return { value: number, unit: textOf(unit?.part(2)) || known[1], system: UCUM, code: known[0] };
  },
};

/** [amount, unit] → Ratio amount per 1 day (JP Core 1日量). */
export const perDay: TransformDefinition = {
  inputs: [1, 2],
  apply: ([value, unit], args, ctx) => {
    const numerator = quantityOf(value, unit, args, ctx, 'daily amount');
    return numerator && { numerator, denominator: { value: 1, unit: '日', system: UCUM, code: 'd' } };
  },
};

/** [range text, unit] → referenceRange: `3.5-5.0`, `<=5`, `>10`, or the text as sent. */
export const referenceRange: TransformDefinition = {
  inputs: [1, 2],
  apply: ([range, unit], args, ctx) => {
    const text = normalizeDigits(textOf(range));
    if (!text) return undefined;
    const u = unitOf(unit, args, ctx);
    const q = (n: string) => ({ value: Number(n), ...u });
    const between = /^(-?\d+(?:\.\d+)?)\s*[-~〜]\s*(-?\d+(?:\.\d+)?)$/.exec(text);
    if (between) return { low: q(between[1]), high: q(between[2]), text };
    const upper = /^<=?\s*(-?\d+(?:\.\d+)?)$/.exec(text);
    if (upper) return { high: q(upper[1]), text };
    const lower = /^>=?\s*(-?\d+(?:\.\d+)?)$/.exec(text);
    if (lower) return { low: q(lower[1]), text };
    return { text };
  },
};

const COMPARATORS = new Set(['<', '<=', '>', '>=']);

/** [OBX-2 value type, OBX-5 value, OBX-6 units] → value[x] of the matching type. */
export const observationValue: TransformDefinition = {
  inputs: [2, 3],
  apply: ([type, value, unit], args, ctx) => {
    if (!value || value.isEmpty) return undefined;
    const kind = textOf(type).toUpperCase();
    switch (kind) {
      case 'NM':
        return new Choice('Quantity', quantityOf(value, unit, args, ctx, 'OBX-5 (NM)'));
      case 'SN': {
        const comparator = textOf(value.part(1));
        const number = textOf(value.part(2));
        if (comparator && !COMPARATORS.has(comparator)) throw new TransformError(`"${comparator}" is not a comparator`);
        const q = quantityOf(value.part(2), unit, args, ctx, 'OBX-5 (SN)');
        if (!q) throw new TransformError(`"${number}" is not a structured number`);
        return new Choice('Quantity', { ...q, ...(comparator ? { comparator } : {}) });
      }
      case 'CE': case 'CWE': case 'CNE': {
        const code = textOf(value.part(1));
        const display = textOf(value.part(2));
        const system = ctx.codeSystems.resolve(textOf(value.part(3)), code);
        return new Choice('CodeableConcept', present({ coding: code ? [present({ system, code, display })] : undefined, text: display }));
      }
      case 'DT': case 'TS': case 'DTM':
        return new Choice('DateTime', toDateTime(textOf(value)));
      default:
        return new Choice('String', value.text.trim());
    }
  },
};
