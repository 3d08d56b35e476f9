import express, { type Request, type Response } from 'express';
import { authOf, type AuthContext } from '../auth/context.js';
import { authenticate } from '../auth/middleware.js';
import { operationOutcome } from '../fhir/outcome.js';
import type { Services } from '../services.js';
import { prepareCareRecords } from './care-records.js';
import { prepareCareplan } from './careplan.js';
import { buildAck, fallbackAckHeader } from './hl7v2/ack.js';
import type { Charset } from './hl7v2/charset.js';
import { ERROR_CODES, rejected } from './hl7v2/errors.js';
import { receiveHl7, type Hl7Outcome, type IngestSender } from './hl7-intake.js';
import { messageAdminRoutes } from './message-admin.js';
import { mllpSenderRoutes } from './mllp-senders.js';
import { partialFlag, receiveTable, type TableOutcome } from './table-intake.js';

/**
 * HTTP ingest: `POST /ingest/hl7v2` (the message bytes as sent; the answer is the HL7 ACK, 200 for AA,
 * 4xx for AE/AR), `POST /ingest/careplan-csv` and `POST /ingest/care-records` (answer: OperationOutcome),
 * plus the message store (`/admin/messages`) and the MLLP sender registry (`/admin/mllp-senders`).
 * Each sender is a registered client acting for its Organization; the data it sends is that Organization's.
 */
export function ingestRoutes(services: Services): express.Router {
  const router = express.Router();
  const limit = services.config.maxBodyBytes;

  router.post('/ingest/hl7v2', authenticate(services), async (req, res) => {
    const body = await readBody(req, limit);
    const sender = senderOf(authOf(res));
    let outcome: Hl7Outcome;
    if (!sender || body.truncated) {
      const refusal = body.truncated
        ? rejected({}, ERROR_CODES.segmentSequence, `The message is larger than ${limit} bytes; only its beginning is kept / メッセージが大きすぎます`, 413)
        : rejected({}, ERROR_CODES.unknownKey, 'Send messages as a registered client acting for an Organization, not as the administrator / 管理者トークンでは送信できません', 403);
      outcome = sender
        ? await receiveHl7(services, body.bytes, sender, { transport: 'http', refusal })
        : { ack: buildAck(fallbackAckHeader(body.bytes), 'AR', 'Rejected', refusal.problems), httpStatus: 403, status: 'rejected' };
    } else {
      outcome = await receiveHl7(services, body.bytes, sender, {
        transport: 'http', contentType: req.get('content-type'),
      });
    }
    sendAck(res, outcome);
  });

  router.post('/ingest/careplan-csv', authenticate(services), async (req, res) => {
    const fileName = header(req, 'x-filename');
    await receiveFile(req, res, services, 'careplan-csv', fileName, (bytes) => (facts) =>
      prepareCareplan(bytes, { table: query(req, 'table'), fileName, contentType: req.get('content-type') }, facts));
  });

  router.post('/ingest/care-records', authenticate(services), async (req, res) => {
    await receiveFile(req, res, services, 'care-records', header(req, 'x-filename'), (bytes) => () =>
      prepareCareRecords(bytes, { mapping: query(req, 'mapping'), contentType: req.get('content-type') }));
  });

  router.use(messageAdminRoutes(services));
  router.use(mllpSenderRoutes(services));
  return router;
}

type Prepare = Parameters<typeof receiveTable>[4];

async function receiveFile(
  req: Request, res: Response, services: Services, kind: 'careplan-csv' | 'care-records', fileName: string | undefined,
  prepare: (bytes: Buffer) => Prepare,
): Promise<void> {
  const body = await readBody(req, services.config.maxBodyBytes);
  const sender = senderOf(authOf(res));
  if (!sender) {
    sendOutcome(res, 403, 'Send files as a registered client acting for an Organization, not as the administrator / 管理者トークンでは送信できません');
    return;
  }
  if (body.truncated) {
    sendOutcome(res, 413, `The file is larger than ${services.config.maxBodyBytes} bytes / ファイルが大きすぎます`);
    return;
  }
  const partial = partialFlag(req.query.partial);
  const outcome: TableOutcome = await receiveTable(services, body.bytes, sender, {
    kind, transport: 'http', contentType: req.get('content-type'), fileName, partial,
  }, prepare(body.bytes));
  if (outcome.messageId !== undefined) res.set('Location', `/admin/messages/${outcome.messageId}`);
  res.status(outcome.httpStatus).type('application/fhir+json').send(JSON.stringify(outcome.outcome));
}

export function senderOf(auth: AuthContext): IngestSender | undefined {
  if (auth.admin || !auth.organizationId) return undefined;
  return { clientId: auth.clientId, organizationId: auth.organizationId, auth };
}

const CHARSET_NAMES: Record<Charset, string> = { 'iso-2022-jp': 'ISO-2022-JP', 'utf-8': 'UTF-8', shift_jis: 'Shift_JIS', ascii: 'US-ASCII' };

function sendAck(res: Response, outcome: Hl7Outcome): void {
  if (outcome.messageId !== undefined) res.set('Location', `/admin/messages/${outcome.messageId}`);
  if (outcome.retryAfterSeconds !== undefined) res.set('Retry-After', String(outcome.retryAfterSeconds));
  res.status(outcome.httpStatus).type(`x-application/hl7-v2+er7; charset=${CHARSET_NAMES[outcome.ack.charset]}`).send(outcome.ack.bytes);
}

function sendOutcome(res: Response, status: number, diagnostics: string): void {
  res.status(status).type('application/fhir+json').send(JSON.stringify(operationOutcome([{ code: status === 413 ? 'too-costly' : 'forbidden', diagnostics }])));
}

function query(req: Request, name: string): string | undefined {
  const value = req.query[name];
  return typeof value === 'string' && value ? value : undefined;
}

function header(req: Request, name: string): string | undefined {
  const raw = req.get(name);
  if (!raw) return undefined;
  try {
    return decodeURIComponent(raw).slice(0, 255);
  } catch {
    return raw.slice(0, 255);
  }
}

/** The request body as bytes, up to `limit`; a larger body is read to its end but only its head kept. */
export async function readBody(req: Request, limit: number): Promise<{ bytes: Buffer; truncated: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  let truncated = false;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    if (truncated) continue;
    if (size + chunk.length > limit) {
      chunks.push(chunk.subarray(0, Math.min(limit - size, 64 * 1024)));
      truncated = true;
      continue;
    }
    chunks.push(chunk);
    size += chunk.length;
  }
  return { bytes: Buffer.concat(chunks), truncated };
}
