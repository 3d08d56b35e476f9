import type { ForEach, SourceLocation } from './spec.js';

/**
 * What a transform reads: one value of the source with its parts. An HL7 value's parts are its
 * repetitions, components or sub-components; a CSV cell has one part, itself.
 */
export interface SourceValue {
  readonly text: string;
  part(i: number): SourceValue;
  parts(): SourceValue[];
  readonly isEmpty: boolean;
  /** An explicit "delete this value" (HL7 `""`). */
  readonly isNull: boolean;
}

/** One context a mapping reads from: a message, one of its segments or groups, or a CSV row. */
export interface Source {
  /** The values at `path` (alternatives separated by `|`: the first that has a value). */
  values(path: string): SourceValue[];
  /** Where `path` is, for an error. */
  locate(path: string): SourceLocation;
  /** Where this context is (the iterated segment, the CSV line). */
  origin(): SourceLocation;
  /** The contexts a forEach iterates over. */
  items(forEach: ForEach): Source[];
  /** A check of a path's syntax, run when a mapping file is loaded. */
  checkPath(path: string): string | undefined;
}

export class CellValue implements SourceValue {
  constructor(readonly text: string) {}

  part(i: number): SourceValue {
    return i === 1 ? this : EMPTY_CELL;
  }

  parts(): SourceValue[] {
    return [this];
  }

  get isEmpty(): boolean {
    return this.text === '';
  }

  get isNull(): boolean {
    return false;
  }
}

export const EMPTY_CELL = new CellValue('');

/** A CSV (or JSON record) row: columns by header name, located by line and column. */
export class RowSource implements Source {
  constructor(
    private readonly row: Readonly<Record<string, string | undefined>>,
    readonly line: number,
  ) {}

  values(path: string): SourceValue[] {
    for (const column of path.split('|')) {
      const text = this.row[column]?.trim();
      if (text) return [new CellValue(text)];
    }
    return [];
  }

  locate(path: string): SourceLocation {
    const columns = path.split('|');
    return { line: this.line, column: columns.find((c) => this.row[c]?.trim()) ?? columns[0] };
  }

  origin(): SourceLocation {
    return { line: this.line };
  }

  items(): Source[] {
    return [this];
  }

  checkPath(path: string): string | undefined {
    return path.trim() ? undefined : 'a column name is required';
  }
}
