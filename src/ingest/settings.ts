import { integerSetting, sizeSetting } from '../settings.js';

/**
 * Ingest settings, read from the environment (see the README's "Settings"):
 * - RENKEI_MLLP_MAX_FRAME: largest MLLP frame accepted (default 4mb); a larger one is refused with AR.
 * - RENKEI_MLLP_IDLE_TIMEOUT_SECONDS: an MLLP connection with no traffic for this long is closed (default
 *   600; 0 never closes it).
 * - RENKEI_MESSAGE_RETENTION_DAYS: messages received longer ago are pruned from the message store
 *   (default 90; 0 keeps them for ever).
 * - RENKEI_HL7_PROCESSING_IDS: the MSH-11 processing ids applied to the data (default P: production
 *   only; a test gateway may take T and D as well); any other is refused with AR 202.
 */
export interface IngestSettings {
  mllpMaxFrameBytes: number;
  mllpIdleTimeoutSeconds: number;
  retentionDays: number;
  processingIds: string[];
}

function processingIds(raw: string | undefined): string[] {
  const ids = (raw || 'P').split(',').map((id) => id.trim().toUpperCase()).filter(Boolean);
  const unknown = ids.filter((id) => !['P', 'T', 'D'].includes(id));
  if (unknown.length || !ids.length) throw new Error(`RENKEI_HL7_PROCESSING_IDS must list P, T or D, got "${raw}"`);
  return ids;
}

export function ingestSettings(env: NodeJS.ProcessEnv = process.env): IngestSettings {
  return {
    mllpMaxFrameBytes: sizeSetting(env, 'RENKEI_MLLP_MAX_FRAME', 4 * 1024 * 1024),
    mllpIdleTimeoutSeconds: integerSetting(env, 'RENKEI_MLLP_IDLE_TIMEOUT_SECONDS', 600),
    retentionDays: integerSetting(env, 'RENKEI_MESSAGE_RETENTION_DAYS', 90),
    processingIds: processingIds(env.RENKEI_HL7_PROCESSING_IDS),
  };
}
