/**
 * Ingest settings, read from the environment (see the README's "Settings"):
 * - RENKEI_MLLP_MAX_FRAME: largest MLLP frame accepted (default 4mb); a larger one is refused with AR.
 * - RENKEI_MESSAGE_RETENTION_DAYS: messages received longer ago are pruned from the message store
 *   (default 90; 0 keeps them for ever).
 * - RENKEI_HL7_PROCESSING_IDS: the MSH-11 processing ids applied to the data (default P: production
 *   only; a test gateway may take T and D as well); any other is refused with AR 202.
 */
export interface IngestSettings {
  mllpMaxFrameBytes: number;
  retentionDays: number;
  processingIds: string[];
}

function bytes(raw: string | undefined, fallback: number, name: string): number {
  if (!raw) return fallback;
  const m = /^(\d+)\s*(kb|mb|b)?$/i.exec(raw.trim());
  if (!m) throw new Error(`${name} must be a size such as 4mb, got "${raw}"`);
  const unit = (m[2] ?? 'b').toLowerCase();
  return Number(m[1]) * (unit === 'mb' ? 1024 * 1024 : unit === 'kb' ? 1024 : 1);
}

function whole(raw: string | undefined, fallback: number, name: string): number {
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer, got "${raw}"`);
  return value;
}

function processingIds(raw: string | undefined): string[] {
  const ids = (raw || 'P').split(',').map((id) => id.trim().toUpperCase()).filter(Boolean);
  const unknown = ids.filter((id) => !['P', 'T', 'D'].includes(id));
  if (unknown.length || !ids.length) throw new Error(`RENKEI_HL7_PROCESSING_IDS must list P, T or D, got "${raw}"`);
  return ids;
}

export function ingestSettings(env: NodeJS.ProcessEnv = process.env): IngestSettings {
  return {
    mllpMaxFrameBytes: bytes(env.RENKEI_MLLP_MAX_FRAME, 4 * 1024 * 1024, 'RENKEI_MLLP_MAX_FRAME'),
    retentionDays: whole(env.RENKEI_MESSAGE_RETENTION_DAYS, 90, 'RENKEI_MESSAGE_RETENTION_DAYS'),
    processingIds: processingIds(env.RENKEI_HL7_PROCESSING_IDS),
  };
}
