import { toDateTime } from '../../mapping/transforms/dates.js';
import { TransformError } from '../../mapping/transforms/types.js';
import { ERROR_CODES, contentError, rejected } from './errors.js';
import type { Hl7Message } from './message.js';

/** What the gateway needs from MSH before mapping: type, control id, time, sender, version. */
export interface MessageFacts {
  /** MSH-9.1^MSH-9.2, e.g. RDE^O11. */
  type: string;
  controlId: string;
  /** MSH-7 as FHIR dateTime (+09:00 when no offset is sent). */
  time: string;
  /** MSH-7 as an instant, for ordering messages. */
  timeValue: Date;
  sendingApplication: string;
  sendingFacility: string;
  version: string;
  processingId: string;
}

const MSH = (field: number, component?: number) => ({ segment: 'MSH', sequence: 1, field, ...(component ? { component } : {}) });
const PROCESSING_IDS = new Set(['P', 'T', 'D']);

export function readHeader(message: Hl7Message): MessageFacts {
  const msh = message.header;
  const code = msh.text(9, 1).toUpperCase();
  const trigger = msh.text(9, 2).toUpperCase();
  if (!code || !trigger) throw rejected(MSH(9), ERROR_CODES.requiredFieldMissing, 'MSH-9 (message type^trigger event) is required / メッセージ型がありません');
  const controlId = msh.text(10);
  if (!controlId) throw rejected(MSH(10), ERROR_CODES.requiredFieldMissing, 'MSH-10 (message control id) is required / メッセージ制御IDがありません');
  if (controlId.length > 199) throw rejected(MSH(10), ERROR_CODES.dataType, 'MSH-10 is longer than 199 characters / メッセージ制御IDが長すぎます');
  const version = msh.text(12);
  if (!/^2\.\d/.test(version)) {
    throw rejected(MSH(12), ERROR_CODES.unsupportedVersion, `MSH-12 version "${version}" is not supported; send HL7 v2.x (JAHIS: 2.5) / バージョンに対応していません`);
  }
  const processingId = msh.text(11).toUpperCase() || 'P';
  if (!PROCESSING_IDS.has(processingId)) {
    throw rejected(MSH(11), ERROR_CODES.unsupportedProcessingId, `MSH-11 processing id "${processingId}" is not P, T or D / 処理IDが正しくありません`);
  }
  const rawTime = msh.text(7);
  if (!rawTime) throw contentError(MSH(7), ERROR_CODES.requiredFieldMissing, 'MSH-7 (date/time of message) is required / メッセージ日時がありません');
  let time: string;
  try {
    time = toDateTime(rawTime);
  } catch (err) {
    if (err instanceof TransformError) throw contentError(MSH(7), ERROR_CODES.dataType, `MSH-7: ${err.message}`);
    throw err;
  }
  return {
    type: `${code}^${trigger}`,
    controlId,
    time,
    timeValue: new Date(time.includes('T') ? time : `${time.padEnd(10, '-01').slice(0, 10)}T00:00:00+09:00`),
    sendingApplication: msh.text(3),
    sendingFacility: msh.text(4),
    version,
    processingId,
  };
}
