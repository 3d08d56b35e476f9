import { parse } from 'csv-parse/sync';
import iconv from 'iconv-lite';
import { hasJsonNulEscape } from '../nul-characters.js';
import { shiftJisFault, utf8Fault } from './hl7v2/charset.js';

/**
 * CSV files as care software exports them: Shift_JIS (MS932) or UTF-8, CRLF or LF, a header row. The
 * bytes must be valid in the character set (a wrong one is refused, never decoded into mojibake); each
 * record keeps the line it starts on, so every error can name its line and column.
 */

export type TextCharset = 'shift_jis' | 'utf-8';

export interface TableProblem {
  line?: number;
  column?: string;
  reason: string;
}

/** The file cannot be read as a table: each problem names its line (and column). */
export class TableError extends Error {
  constructor(readonly problems: TableProblem[], readonly status = 400) {
    super(problems.map((p) => p.reason).join('; '));
  }
}

export interface TableRow {
  line: number;
  values: Record<string, string>;
}

export interface Table {
  header: string[];
  rows: TableRow[];
}

export function charsetOfContentType(contentType: string | undefined): TextCharset | undefined {
  const m = /charset\s*=\s*"?([\w-]+)"?/i.exec(contentType ?? '');
  if (!m) return undefined;
  const name = m[1].toLowerCase().replace(/[_-]/g, '');
  if (['utf8'].includes(name)) return 'utf-8';
  if (['shiftjis', 'sjis', 'ms932', 'cp932', 'windows31j'].includes(name)) return 'shift_jis';
  throw new TableError([{ reason: `charset ${m[1]} is not supported; send Shift_JIS (MS932) or UTF-8 / 文字コードに対応していません` }], 415);
}

function lineAt(bytes: Uint8Array, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < bytes.length; i++) if (bytes[i] === 0x0a) line++;
  return line;
}

export function decodeText(bytes: Uint8Array, charset: TextCharset): string {
  const nul = bytes.indexOf(0);
  if (nul >= 0) throw new TableError([{ line: lineAt(bytes, nul), reason: 'the file contains a NUL byte (0x00): is it a text file? / NUL文字 (0x00) が含まれています' }], 400);
  if (charset === 'utf-8') {
    const body = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? bytes.subarray(3) : bytes;
    const fault = utf8Fault(body);
    if (fault) throw new TableError([{ line: lineAt(body, fault.offset), reason: `the file is not valid UTF-8: ${fault.reason} / UTF-8として読めません` }], 400);
    return Buffer.from(body).toString('utf8');
  }
  const fault = shiftJisFault(bytes);
  if (fault) {
    throw new TableError([{ line: lineAt(bytes, fault.offset), reason: `the file is not valid Shift_JIS (MS932): ${fault.reason} / Shift_JIS(MS932)として読めません` }], 400);
  }
  return iconv.decode(Buffer.from(bytes), 'cp932');
}

export function parseTable(text: string): Table {
  let records: { record: string[]; raw: string }[];
  try {
    // Line ends are made LF first, so each record's raw text ends with its own line break.
    records = parse(text.replace(/\r\n?/g, '\n'), { bom: true, raw: true, relax_column_count: true, relax_quotes: false }) as unknown as { record: string[]; raw: string }[];
  } catch (err) {
    const e = err as { message?: string; lines?: number };
    throw new TableError([{ line: e.lines, reason: `not a CSV file: ${e.message ?? 'unreadable'} / CSVとして読めません` }]);
  }
  let line = 1;
  const located = records.map((r) => {
    const start = line;
    line += r.raw.match(/\n/g)?.length ?? 0;
    return { line: start, cells: r.record };
  }).filter((r) => r.cells.some((c) => c.trim() !== ''));
  if (!located.length) throw new TableError([{ line: 1, reason: 'the file is empty: a header row is required / ヘッダー行がありません' }]);
  const [head, ...body] = located;
  const header = head.cells.map((c) => c.trim());
  const seen = new Set<string>();
  for (const name of header) {
    if (!name) throw new TableError([{ line: head.line, reason: 'a column of the header row has no name / ヘッダーに空の列名があります' }]);
    if (seen.has(name)) throw new TableError([{ line: head.line, column: name, reason: `column ${name} appears twice in the header / 列名が重複しています` }]);
    seen.add(name);
  }
  const problems: TableProblem[] = [];
  const rows: TableRow[] = [];
  for (const r of body) {
    if (r.cells.length !== header.length) {
      problems.push({ line: r.line, reason: `${r.cells.length} columns where the header has ${header.length} / 列数がヘッダーと一致しません` });
      continue;
    }
    rows.push({ line: r.line, values: Object.fromEntries(header.map((h, i) => [h, r.cells[i]])) });
  }
  if (problems.length) throw new TableError(problems);
  return { header, rows };
}

/** JSON records (an array of objects with the same names as the CSV columns), numbered like lines. */
export function tableOfJson(text: string): Table {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new TableError([{ reason: `not JSON: ${(err as Error).message} / JSONとして読めません` }]);
  }
  if (hasJsonNulEscape(text)) throw new TableError([{ reason: 'a value contains a NUL character (\\u0000) / NUL文字が含まれています' }]);
  const list = Array.isArray(value) ? value : (value as { records?: unknown })?.records;
  if (!Array.isArray(list) || !list.length) throw new TableError([{ reason: 'send a JSON array of records (or {"records": [...]}) / レコードの配列を送ってください' }]);
  const header = new Set<string>();
  const rows: TableRow[] = [];
  const problems: TableProblem[] = [];
  list.forEach((item, index) => {
    const line = index + 1;
    if (!item || typeof item !== 'object' || Array.isArray(item)) {
      problems.push({ line, reason: `record ${line} is not an object / レコードがオブジェクトではありません` });
      return;
    }
    const values: Record<string, string> = {};
    for (const [k, v] of Object.entries(item as Record<string, unknown>)) {
      header.add(k);
      if (v === null || v === undefined) continue;
      if (typeof v === 'object') problems.push({ line, column: k, reason: `${k} must be a string, number or boolean / 値の型が正しくありません` });
      else values[k] = typeof v === 'boolean' ? (v ? '1' : '0') : String(v);
    }
    rows.push({ line, values });
  });
  if (problems.length) throw new TableError(problems);
  return { header: [...header], rows };
}

export function requireColumns(table: Table, required: readonly string[]): void {
  const missing = required.filter((c) => !table.header.includes(c));
  if (missing.length) {
    throw new TableError(missing.map((column) => ({ line: 1, column, reason: `column ${column} is missing from the header / 必須列がありません` })), 400);
  }
}
