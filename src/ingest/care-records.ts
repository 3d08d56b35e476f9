import { charsetOfContentType, decodeText, parseTable, requireColumns, tableOfJson, TableError } from './csv.js';
import { mappings } from './mappings.js';
import type { PreparedTable } from './table-intake.js';
import { unseenUrgentCommunications } from './urgent-visibility.js';

/**
 * A care facility's daily records: CSV (UTF-8 unless the Content-Type names Shift_JIS) or JSON records,
 * through the mapping named by `?mapping=` (a file under mappings/care-records/, default daily-vitals):
 * a vendor's own layout is a new mapping file, not new code.
 */

export interface CareRecordsRequest {
  mapping?: string;
  contentType?: string;
}

export function prepareCareRecords(bytes: Uint8Array, request: CareRecordsRequest): PreparedTable {
  const name = request.mapping ?? 'daily-vitals';
  const engine = /^[a-z0-9-]{1,64}$/.test(name) ? mappings().get(`care-records/${name}`) : undefined;
  if (!engine) {
    const known = mappings().ids('care-records/').map((id) => id.split('/')[1]).join(', ');
    throw new TableError([{ reason: `No care-record mapping "${name}" (known: ${known}) / マッピングがありません` }], 404);
  }
  const json = /json/i.test(request.contentType ?? '');
  const table = json ? tableOfJson(decodeText(bytes, 'utf-8')) : parseTable(decodeText(bytes, charsetOfContentType(request.contentType) ?? 'utf-8'));
  requireColumns(table, engine.spec.requiredColumns ?? []);
  // Each record carries its own time and makes its own resources: records are not ordered as a file.
  // An urgent Communication the 協力医療機関 cannot see yet (no Consent) is reported with the answer.
  return { engine, table, messageType: engine.spec.id, review: unseenUrgentCommunications };
}
