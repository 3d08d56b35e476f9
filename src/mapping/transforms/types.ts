import type { SourceValue } from '../source.js';
import type { CodeSystems } from '../code-systems.js';

export type Args = Record<string, unknown>;

export interface TransformContext {
  codeSystems: CodeSystems;
}

/** A named transform: source values (one per `from` path) and the rule's args → a FHIR value, or undefined. */
export interface TransformDefinition {
  /** How many `from` values it takes. */
  inputs: [min: number, max: number];
  /** Checked when a mapping file is loaded: a message, or undefined when the args are fine. */
  checkArgs?: (args: Args) => string | undefined;
  apply(inputs: SourceValue[], args: Args, ctx: TransformContext): unknown;
}

/** The source value cannot become the FHIR value (not a date, not in the table…). */
export class TransformError extends Error {
  constructor(
    message: string,
    /** HL7 table 0357: 102 data type error, 103 table value not found. */
    readonly kind: 'data-type' | 'table-value' = 'data-type',
  ) {
    super(message);
  }
}

/**
 * A FHIR element of the fields that hold a value (not undefined, null, '' or an empty list), in the order
 * given. Built by adding fields one by one, elements of one kind share a few object shapes, which keeps
 * validating and serialising them fast (spreading literals gives nearly every element its own shape).
 */
export function present(fields: Record<string, unknown>): Record<string, unknown> {
  const element: Record<string, unknown> = {};
  for (const key in fields) {
    const value = fields[key];
    if (value === undefined || value === null || value === '' || (Array.isArray(value) && value.length === 0)) continue;
    element[key] = value;
  }
  return element;
}

export const textOf = (v: SourceValue | undefined): string => (v ? v.text.trim() : '');

/** Half-width digits and signs from full-width ones (１２.５ → 12.5), as Japanese systems often send. */
export const normalizeDigits = (text: string): string => text.normalize('NFKC').trim();

export function decimalOf(text: string, what: string): number {
  const normal = normalizeDigits(text).replace(/,/g, '');
  if (!/^[+-]?(\d+(\.\d*)?|\.\d+)$/.test(normal)) throw new TransformError(`"${text}" is not a number (${what}) / 数値ではありません`);
  const value = Number(normal);
  if (!Number.isFinite(value)) throw new TransformError(`"${text}" is out of range (${what})`);
  return value;
}

export function stringArg(args: Args, name: string): string | undefined {
  const value = args[name];
  return typeof value === 'string' ? value : undefined;
}

export const needsString = (...names: string[]) => (args: Args): string | undefined => {
  const missing = names.find((n) => typeof args[n] !== 'string');
  return missing ? `args.${missing} (a string) is required` : undefined;
};
