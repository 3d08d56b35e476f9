import express, { type Request } from 'express';
import iconv from 'iconv-lite';
import { authOf, type AuthContext } from '../auth/context.js';
import { authenticate } from '../auth/middleware.js';
import { parseScopes } from '../auth/scopes.js';
import { badRequest, conflict, forbidden, notFound } from '../fhir/outcome.js';
import { oneOf, pageOf } from '../admin-query.js';
import type { Services } from '../services.js';
import { prepareCareRecords } from './care-records.js';
import { prepareCareplan } from './careplan.js';
import { decodeMessage } from './hl7v2/charset.js';
import { receiveHl7, type IngestSender } from './hl7-intake.js';
import {
  getMessage, listMessages, MESSAGE_KINDS, MESSAGE_STATUSES, type MessageFilter, type MessageViewer, type StoredMessage,
} from './message-store.js';
import { partialFlag, receiveTable } from './table-intake.js';

/**
 * The message store over HTTP: `GET /admin/messages` (filters status, kind, control_id, sender, since;
 * paging _count, _offset), `GET /admin/messages/{id}` (with the raw bytes, base64, and their text), and
 * `POST /admin/messages/{id}/$replay` (run the stored bytes through the current mappings again, as the
 * original sender). The administrator sees every message; a client sees its Organization's.
 */
export function messageAdminRoutes(services: Services): express.Router {
  const router = express.Router();
  router.use('/admin/messages', authenticate(services));

  router.get('/admin/messages', async (req, res) => {
    const { total, messages } = await listMessages(services.db, viewerOf(authOf(res)), filterOf(req));
    res.json({ total, messages: messages.map(describe) });
  });

  router.get('/admin/messages/:id', async (req, res) => {
    const message = await getMessage(services.db, viewerOf(authOf(res)), messageId(req));
    if (!message) throw notFound(`Message ${req.params.id} is not known / メッセージが見つかりません`);
    res.json({ ...describe(message), raw: message.raw?.toString('base64'), text: textOf(message) });
  });

  router.post('/admin/messages/:id/:operation', async (req, res) => {
    if (req.params.operation !== '$replay') throw notFound(`Operation ${req.params.operation} is not known`);
    const auth = authOf(res);
    const message = await getMessage(services.db, viewerOf(auth), messageId(req));
    if (!message) throw notFound(`Message ${req.params.id} is not known / メッセージが見つかりません`);
    const sender = await originalSender(services, message);
    const raw = message.raw ?? Buffer.alloc(0);
    if (message.kind === 'hl7v2') {
      const outcome = await receiveHl7(services, raw, sender, { transport: 'http', existingId: message.id });
      res.status(outcome.httpStatus).json({ status: outcome.status, ack: outcome.ack.text, message: describe((await getMessage(services.db, viewerOf(auth), message.id, false))!) });
      return;
    }
    const partial = partialFlag(req.query.partial);
    const request = { kind: message.kind, transport: 'http' as const, contentType: message.contentType ?? undefined, fileName: message.fileName ?? undefined, partial, existingId: message.id };
    const outcome = await receiveTable(services, raw, sender, request, message.kind === 'careplan-csv'
      ? (facts) => prepareCareplan(raw, { fileName: request.fileName, contentType: request.contentType, table: message.messageType?.match(/table(\d)$|\/(user)$/)?.slice(1).find(Boolean) }, facts)
      : () => prepareCareRecords(raw, { contentType: request.contentType, mapping: message.messageType?.split('/')[1] }));
    res.status(outcome.httpStatus).json({ status: outcome.status, outcome: outcome.outcome, message: describe((await getMessage(services.db, viewerOf(auth), message.id, false))!) });
  });
  return router;
}

function viewerOf(auth: AuthContext): MessageViewer {
  if (!auth.admin && !auth.organizationId) throw forbidden('Only the administrator or a client acting for an Organization may read messages');
  return { admin: auth.admin, organizationId: auth.organizationId };
}

function messageId(req: Request): number {
  const id = String(req.params.id);
  if (!/^\d{1,15}$/.test(id)) throw badRequest(`Message id must be a number, got "${id}"`);
  return Number(id);
}

function filterOf(req: Request): MessageFilter {
  const q = (name: string) => (typeof req.query[name] === 'string' && req.query[name] ? (req.query[name] as string) : undefined);
  const status = oneOf('status', q('status'), MESSAGE_STATUSES);
  const kind = oneOf('kind', q('kind'), MESSAGE_KINDS);
  const since = q('since');
  if (since && Number.isNaN(Date.parse(since))) throw badRequest('since must be a date/time (ISO 8601)');
  return {
    status, kind, controlId: q('control_id'), sender: q('sender'), since: since ? new Date(since) : undefined,
    ...pageOf(q('_count'), q('_offset'), 500),
  };
}

function describe(m: StoredMessage) {
  return {
    id: m.id, kind: m.kind, transport: m.transport, status: m.status,
    ...(m.senderOrg ? { sender: `Organization/${m.senderOrg}` } : {}),
    ...(m.senderClient ? { client_id: m.senderClient } : {}),
    ...(m.controlId ? { control_id: m.controlId } : {}),
    ...(m.messageType ? { message_type: m.messageType } : {}),
    ...(m.messageTime ? { message_time: m.messageTime.toISOString() } : {}),
    ...(m.fileName ? { file_name: m.fileName } : {}),
    ...(m.ackCode ? { ack: m.ackCode } : {}),
    resources: m.resources,
    ...(m.error ? { error: m.error } : {}),
    ...(m.duplicateOf !== null ? { duplicate_of: m.duplicateOf } : {}),
    attempts: m.attempts,
    received_at: m.receivedAt.toISOString(),
    ...(m.processedAt ? { processed_at: m.processedAt.toISOString() } : {}),
  };
}

/** The stored bytes as text, decoded as the message declares (HL7) or as its file is (CSV); undefined if unreadable. */
function textOf(m: StoredMessage): string | undefined {
  if (!m.raw) return undefined;
  try {
    if (m.kind === 'hl7v2') return decodeMessage(m.raw).text;
    const utf8 = new TextDecoder('utf-8', { fatal: true });
    try {
      return utf8.decode(m.raw);
    } catch {
      return iconv.decode(m.raw, 'cp932');
    }
  } catch {
    return undefined;
  }
}

/** The client (and its current scopes) that sent the message: a replay acts as it did. */
async function originalSender(services: Services, m: StoredMessage): Promise<IngestSender> {
  if (!m.senderOrg) throw conflict('The sender of this message was not identified; it cannot be replayed / 送信元不明のため再処理できません');
  const client = m.senderClient ? await services.auth.clients.find(m.senderClient) : undefined;
  if (m.senderClient && (!client || client.disabled)) throw conflict(`Client ${m.senderClient} is disabled; the message cannot be replayed`);
  const scopes = client ? parseScopes(client.scope) : parseScopes('system/*.cruds');
  return {
    clientId: m.senderClient ?? undefined,
    organizationId: m.senderOrg,
    auth: { admin: false, clientId: m.senderClient ?? undefined, organizationId: m.senderOrg, scopes, purposeOfUse: 'TREAT' },
  };
}
