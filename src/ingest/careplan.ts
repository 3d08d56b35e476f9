import { toDateTime } from '../mapping/transforms/dates.js';
import { reconcilePlanVersions } from './careplan-versions.js';
import { charsetOfContentType, decodeText, parseTable, requireColumns, TableError } from './csv.js';
import { mappings } from './mappings.js';
import type { SenderFacts } from './sender.js';
import type { PreparedTable } from './table-intake.js';

/**
 * ケアプランデータ連携 CSV files (Shift_JIS / MS932 unless the Content-Type says otherwise). The table is
 * chosen by `?table=` (1, 2, user), else by the standard file name's prefix (UP2KYO → 第2表), else by
 * the header. The file name `<prefix>_<YYYYMM>_<sender 10 digits>_<receiver 10 digits>_<YYYYMMDDHHMMSS>.CSV`
 * gives the time that orders re-sent plans (a file sent without it is applied as it comes), and its
 * sender must be the sending Organization's 事業所番号.
 */

export interface CareplanFileName {
  prefix: string;
  targetMonth: string;
  senderNo: string;
  receiverNo: string;
  created: string;
}

const FILE_NAME = /^([A-Za-z0-9]+)_(\d{6})_(\d{10})_(\d{10})_(\d{14})\.csv$/i;

export function parseCareplanFileName(name: string | undefined): CareplanFileName | undefined {
  const m = FILE_NAME.exec(name?.trim() ?? '');
  return m ? { prefix: m[1].toUpperCase(), targetMonth: m[2], senderNo: m[3], receiverNo: m[4], created: m[5] } : undefined;
}

const TABLES: Record<string, string> = { '1': 'careplan-csv/table1', '2': 'careplan-csv/table2', user: 'careplan-csv/user' };
/**
 * 第3表 has no CSV in the standard (厚労省 介護保険最新情報 vol.1156 defines 第1表, 第2表, 第6表, 第7表 and
 * 利用者補足情報); 第6表 and 第7表 are standard but not mapped by this gateway yet.
 */
const UNSUPPORTED: Record<string, { en: string; ja: string }> = {
  '3': { en: 'table 3 (週間サービス計画表) has no CSV layout in the ケアプランデータ連携 standard', ja: '第3表（週間サービス計画表）は標準仕様にCSV様式がありません' },
  '6': { en: 'table 6 (サービス利用票) is not mapped by this gateway yet', ja: '第6表（サービス利用票）には未対応です' },
  '7': { en: 'table 7 (サービス利用票別表) is not mapped by this gateway yet', ja: '第7表（サービス利用票別表）には未対応です' },
};
const SUPPORTED_EN = 'supported: table=user (利用者補足情報), table=1 (第1表), table=2 (第2表)';
const SUPPORTED_JA = '対応している表: 利用者補足情報（table=user）、第1表（table=1）、第2表（table=2）';

function tableOf(requested: string | undefined, file: CareplanFileName | undefined, header: string[]): string {
  const fromName = file && /^UP([1-7])/.exec(file.prefix)?.[1];
  const fromHeader = header.includes('課題NO') ? '2' : header.includes('利用者氏名') ? 'user' : header.includes('作成年月日') ? '1' : undefined;
  const table = requested ?? fromName ?? fromHeader;
  if (table && UNSUPPORTED[table]) {
    const { en, ja } = UNSUPPORTED[table];
    throw new TableError([{ reason: `This file is not accepted: ${en}; ${SUPPORTED_EN} / このファイルは受け付けられません: ${ja}。${SUPPORTED_JA}` }], 422);
  }
  if (!table || !TABLES[table]) {
    throw new TableError([{ reason: `Say which table this is: ?table=user|1|2, or the standard file name in X-Filename (${SUPPORTED_EN}) / 表の種類を指定してください（${SUPPORTED_JA}）` }], 400);
  }
  return TABLES[table];
}

export interface CareplanRequest {
  table?: string;
  fileName?: string;
  contentType?: string;
}

export function prepareCareplan(bytes: Uint8Array, request: CareplanRequest, sender: SenderFacts): PreparedTable {
  const file = parseCareplanFileName(request.fileName);
  if (file && sender.careProviderNo && file.senderNo !== sender.careProviderNo) {
    throw new TableError([{ reason: `The file name says it is from 事業所番号 ${file.senderNo}, but the sender is ${sender.careProviderNo} / 送信元の事業所番号が一致しません` }], 403);
  }
  const text = decodeText(bytes, charsetOfContentType(request.contentType) ?? 'shift_jis');
  const table = parseTable(text);
  const id = tableOf(request.table, file, table.header);
  const engine = mappings().get(id)!;
  requireColumns(table, engine.spec.requiredColumns ?? []);
  const created = file ? toDateTime(file.created) : undefined;
  return {
    engine,
    table,
    messageType: id,
    messageTime: created ? new Date(created) : undefined,
    vars: { 'file.name': request.fileName ?? '' },
    ...(id === TABLES.user ? {} : { reconcile: reconcilePlanVersions }),
  };
}
