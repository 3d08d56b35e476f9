import net, { type AddressInfo } from 'node:net';
import { parseScopes } from '../auth/scopes.js';
import { log } from '../logger.js';
import type { Services } from '../services.js';
import { fallbackAckHeader } from './hl7v2/ack.js';
import { ERROR_CODES, rejected, type Hl7Error } from './hl7v2/errors.js';
import { receiveHl7, type Hl7Outcome, type IngestSender } from './hl7-intake.js';
import { frame, MllpDecoder, type FrameEvent } from './mllp-framing.js';
import { findMllpSenderAndClient, type MllpSender } from './mllp-senders.js';

/**
 * The MLLP listener: HL7 v2 over TCP, several messages per connection, each acknowledged in order with
 * the same ACK the HTTP endpoint gives. A connection is bound to the registered client its first message
 * maps to (MSH-4 sending facility / MSH-3 sending application, see mllp-senders); a later message that
 * maps to another client, or to none, is refused with AR and kept in the message store.
 */

export interface MllpListener {
  port: number;
  close(): Promise<void>;
}

export interface MllpOptions {
  host?: string;
  maxFrameBytes?: number;
  /** A connection with no traffic for this long is closed (default RENKEI_MLLP_IDLE_TIMEOUT_SECONDS; 0 = never). */
  idleTimeoutMs?: number;
}

const CLOSE_DEADLINE_MS = 10_000;

export async function startMllpListener(services: Services, port: number, options: MllpOptions = {}): Promise<MllpListener> {
  const maxFrameBytes = options.maxFrameBytes ?? services.config.ingest.mllpMaxFrameBytes;
  const connections = new Set<MllpConnection>();
  const server = net.createServer((socket) => {
    const connection = new MllpConnection(socket, services, maxFrameBytes, options.idleTimeoutMs ?? services.config.ingest.mllpIdleTimeoutSeconds * 1000);
    connections.add(connection);
    socket.once('close', () => connections.delete(connection));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, options.host ?? services.config.host, () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  log.info({ port: bound }, 'MLLP listener started');
  let closing: Promise<void> | undefined;
  return {
    port: bound,
    close: () =>
      (closing ??= (async () => {
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        await Promise.all([...connections].map((c) => c.finish(CLOSE_DEADLINE_MS)));
        await stopped;
        log.info({ port: bound }, 'MLLP listener stopped');
      })()),
  };
}

const MSH_4 = { segment: 'MSH', sequence: 1, field: 4 };
const normalizeAddress = (address: string | undefined) => (address ?? '').replace(/^::ffff:/, '');

class MllpConnection {
  private readonly decoder: MllpDecoder;
  private queue: Promise<void> = Promise.resolve();
  private bound?: MllpSender;
  /** The bound client as a sender: refused messages on this connection are kept as its. */
  private boundSender?: IngestSender;

  constructor(
    private readonly socket: net.Socket,
    private readonly services: Services,
    private readonly maxFrameBytes: number,
    idleTimeoutMs: number,
  ) {
    this.decoder = new MllpDecoder(maxFrameBytes);
    if (idleTimeoutMs > 0) socket.setTimeout(idleTimeoutMs, () => socket.end());
    socket.on('error', (err) => log.debug({ err: err.message }, 'MLLP connection error'));
    socket.on('data', (chunk: Buffer) => {
      for (const event of this.decoder.push(chunk)) this.enqueue(event);
    });
  }

  private enqueue(event: FrameEvent): void {
    this.queue = this.queue
      .then(async () => {
        const outcome = event.type === 'frame' ? await this.receive(event.bytes) : await this.oversize(event.head);
        if (!this.socket.destroyed && this.socket.writable) this.socket.write(frame(outcome.ack.bytes));
      })
      .catch((err: unknown) => {
        log.error({ err }, 'MLLP message could not be answered');
        this.socket.destroy();
      });
  }

  private async receive(bytes: Buffer): Promise<Hl7Outcome> {
    const { sender, refusal } = await this.identify(bytes);
    return receiveHl7(this.services, bytes, sender, { transport: 'mllp', refusal });
  }

  private async oversize(head: Buffer): Promise<Hl7Outcome> {
    const { sender } = await this.identify(head);
    const refusal = rejected({}, ERROR_CODES.segmentSequence,
      `The frame is larger than ${this.maxFrameBytes} bytes and was not read; only its beginning is kept / メッセージが大きすぎます`, 413);
    return receiveHl7(this.services, head, sender, { transport: 'mllp', refusal });
  }

  /**
   * The client this message may be sent as, or why it may not (one look-up per message, so a mapping
   * changed or a client disabled applies to the next message). A refused message is kept as the
   * connection's bound client's when the connection has one, else without an owner.
   */
  private async identify(bytes: Buffer): Promise<{ sender?: IngestSender; refusal?: Hl7Error }> {
    const header = fallbackAckHeader(bytes);
    const refused = (reason: string, status: number) => ({ sender: this.boundSender, refusal: rejected(MSH_4, ERROR_CODES.unknownKey, reason, status) });
    const found = header.sendingFacility ? await findMllpSenderAndClient(this.services.db, header.sendingFacility, header.sendingApplication) : undefined;
    if (!found) {
      return refused(`Sending facility "${header.sendingFacility}" (application "${header.sendingApplication}") is not registered for MLLP / 送信元が登録されていません`, 401);
    }
    const { mapping, client } = found;
    if (mapping.remoteAddress && normalizeAddress(mapping.remoteAddress) !== normalizeAddress(this.socket.remoteAddress)) {
      return refused(`Sending facility "${header.sendingFacility}" may not send from this address / この接続元からは送信できません`, 403);
    }
    if (this.bound && this.bound.clientId !== mapping.clientId) {
      return refused(`This connection is bound to another sender (${this.bound.sendingFacility}); open a new connection / 接続の送信元と一致しません`, 403);
    }
    if (!client || client.disabled) return refused('The client this facility is registered as is disabled / クライアントが無効です', 403);
    const sender: IngestSender = {
      clientId: client.id,
      organizationId: client.organizationId,
      auth: { admin: false, clientId: client.id, organizationId: client.organizationId, scopes: parseScopes(client.scope), purposeOfUse: 'TREAT' },
    };
    if (!this.bound) {
      this.bound = mapping;
      this.boundSender = sender;
    }
    return { sender };
  }

  /** Answers what has arrived, then closes; cut off after the deadline. */
  async finish(deadlineMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, deadlineMs);
    });
    await Promise.race([this.queue, deadline]);
    clearTimeout(timer);
    this.socket.end(() => this.socket.destroy());
  }
}
