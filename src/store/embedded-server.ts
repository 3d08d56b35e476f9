import net from 'node:net';
import type { PGlite } from '@electric-sql/pglite';
import { log } from '../logger.js';
import { failedAfter, PARSE_COMPLETE_MESSAGE, SessionStatements } from './session-statements.js';

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;
const TERMINATE = 0x58; // 'X'
const READY_FOR_QUERY = 0x5a; // 'Z'
const IDLE = 0x49; // 'I': ReadyForQuery outside a transaction

/**
 * Serves the embedded PGlite to `pg` clients over a loopback socket.
 *
 * PGlite is one backend session shared by every connection, so a connection must own that session for
 * as long as the session holds state on its behalf: from its first message until the backend is idle
 * again (ReadyForQuery 'I'). That covers both an open transaction and an extended-protocol exchange
 * (Parse … Sync), whose unnamed statement would otherwise be overwritten by another connection's Parse.
 */
export class EmbeddedServer {
  private readonly server: net.Server;
  private readonly connections = new Set<SessionConnection>();
  private readonly lock = new SessionLock();
  private readonly statements = new SessionStatements();

  constructor(private readonly db: PGlite) {
    this.server = net.createServer((socket) => {
      const connection = new SessionConnection(socket, db, this.lock, this.statements, () => this.connections.delete(connection));
      this.connections.add(connection);
    });
  }

  /** Listens on 127.0.0.1 and a free port; returns the port. */
  async listen(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => resolve());
    });
    return (this.server.address() as net.AddressInfo).port;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const connection of this.connections) connection.socket.destroy();
    await closed;
  }
}

/** Hands the one PGlite session to one connection at a time, in arrival order. */
class SessionLock {
  private owner?: SessionConnection;
  private readonly waiting: { connection: SessionConnection; granted: () => void }[] = [];

  acquire(connection: SessionConnection): Promise<void> {
    if (this.owner === connection) return Promise.resolve();
    if (!this.owner) {
      this.owner = connection;
      return Promise.resolve();
    }
    return new Promise((granted) => this.waiting.push({ connection, granted }));
  }

  release(connection: SessionConnection): void {
    if (this.owner !== connection) return;
    const next = this.waiting.shift();
    this.owner = next?.connection;
    next?.granted();
  }

  forget(connection: SessionConnection): void {
    const i = this.waiting.findIndex((w) => w.connection === connection);
    if (i >= 0) this.waiting.splice(i, 1);
    this.release(connection);
  }
}

class SessionConnection {
  private buffer: Buffer = Buffer.alloc(0);
  private started = false;
  private readonly pending: Uint8Array[] = [];
  private pumping = false;
  private isClosed = false;
  /** True while this connection owns the session and the backend is not idle. */
  private holding = false;
  /** True from an error in an extended-protocol exchange until its Sync is answered. */
  private failed = false;

  constructor(
    readonly socket: net.Socket,
    private readonly db: PGlite,
    private readonly lock: SessionLock,
    private readonly statements: SessionStatements,
    private readonly onClosed: () => void,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (chunk) => this.receive(chunk));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => void this.closed());
  }

  private receive(chunk: Buffer): void {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    for (let message = this.nextMessage(); message; message = this.nextMessage()) this.pending.push(message);
    void this.pump();
  }

  /** Cuts the next whole protocol message off the buffer; startup-phase messages have no type byte. */
  private nextMessage(): Uint8Array | undefined {
    const headerLength = this.started ? 5 : 8;
    if (this.buffer.length < headerLength) return undefined;
    const length = this.started ? 1 + this.buffer.readInt32BE(1) : this.buffer.readInt32BE(0);
    if (this.buffer.length < length) return undefined;
    const message = this.buffer.subarray(0, length);
    this.buffer = this.buffer.subarray(length);
    if (this.started) return message;
    const code = message.readInt32BE(4);
    if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
      this.socket.write('N');
      return this.nextMessage();
    }
    if (code === CANCEL_REQUEST) {
      this.socket.end();
      return undefined;
    }
    this.started = true;
    return message;
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.pending.length && !this.socket.destroyed) {
        await this.lock.acquire(this);
        this.holding = true;
        const output = await this.execute(this.pending.splice(0));
        if (output.length && this.socket.writable) this.socket.write(output);
        if (idleAfter(output)) {
          this.holding = false;
          this.lock.release(this);
        }
      }
    } catch (err) {
      log.error({ err }, 'embedded store connection failed');
      this.socket.destroy();
    } finally {
      this.pumping = false;
      if (this.isClosed) await this.releaseSession();
    }
  }

  private async execute(messages: Uint8Array[]): Promise<Buffer> {
    const output: Uint8Array[] = [];
    for (const message of messages) {
      if (message[0] === TERMINATE && this.started) {
        this.socket.end();
        break;
      }
      if (!this.failed && this.statements.holds(message)) {
        output.push(PARSE_COMPLETE_MESSAGE);
        continue;
      }
      const answer: Uint8Array[] = [];
      await this.db.runExclusive(() => this.db.execProtocolRawStream(message, { onRawData: (data) => answer.push(data.slice()) }));
      const answered = answer.length === 1 ? answer[0] : Buffer.concat(answer);
      this.failed = failedAfter(this.failed, answered);
      this.statements.ran(message, answered);
      output.push(answered);
    }
    return Buffer.concat(output);
  }

  private async closed(): Promise<void> {
    this.isClosed = true;
    this.pending.length = 0;
    // A pump still executing releases the session itself when it stops.
    if (!this.pumping) await this.releaseSession();
  }

  private async releaseSession(): Promise<void> {
    if (this.holding) {
      // The client left inside a transaction or mid-exchange: return the session clean.
      await this.db.exec('ROLLBACK').catch(() => {});
      this.holding = false;
    }
    this.lock.forget(this);
    this.onClosed();
  }
}

function idleAfter(output: Buffer): boolean {
  const n = output.length;
  return n >= 6 && output[n - 6] === READY_FOR_QUERY && output.readInt32BE(n - 5) === 5 && output[n - 1] === IDLE;
}
