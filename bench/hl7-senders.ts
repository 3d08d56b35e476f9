/**
 * The clinic side of the ingest benchmark: a registered client posting HL7 v2 over HTTP, and MLLP
 * connections (0x0B message 0x1C 0x0D) on which each ACK settles the oldest message still waiting.
 * Every ACK must be MSA-1 `AA`; anything else stops the benchmark with the ACK shown.
 */
import http from 'node:http';
import net from 'node:net';
import { decodeMessage } from '../src/ingest/hl7v2/charset.js';
import { ClientCredentials } from './workload.js';

const VT = 0x0b;
const END = Buffer.from([0x1c, 0x0d]);

export interface Answer {
  status: number;
  body: Buffer;
}

/** A registered client acting for the clinic, renewing its token before it expires. */
export class ClinicClient {
  private readonly credentials: ClientCredentials;
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

  constructor(readonly url: string, id: string, secret: string) {
    this.credentials = new ClientCredentials(url, id, secret);
  }

  private auth(): Promise<string> {
    return this.credentials.token();
  }

  async post(path: string, body: Buffer | string, contentType: string): Promise<Answer> {
    const authorization = `Bearer ${await this.auth()}`;
    return new Promise((resolve, reject) => {
      const req = http.request(`${this.url}${path}`, {
        method: 'POST', agent: this.agent, headers: { authorization, 'content-type': contentType },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  async get(path: string): Promise<any> {
    const res = await fetch(`${this.url}${path}`, { headers: { authorization: `Bearer ${await this.auth()}` } });
    if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`);
    return res.json();
  }

  /** POST /ingest/hl7v2: HTTP 200 with an AA acknowledgment. */
  async sendHl7(message: Buffer): Promise<void> {
    const answer = await this.post('/ingest/hl7v2', message, 'application/hl7-v2');
    expectAccepted('HTTP', answer.body, answer.status);
  }

  close(): void {
    this.agent.destroy();
  }
}

/** One MLLP connection to the gateway. */
export class MllpLink {
  private waiting: { resolve(ack: Buffer): void; reject(err: Error): void }[] = [];
  private received: Buffer = Buffer.alloc(0);
  private broken?: Error;

  private constructor(private readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.read(chunk));
    socket.on('close', () => this.fail(new Error('the MLLP connection closed with messages unanswered')));
    socket.on('error', (err) => this.fail(err));
  }

  static connect(port: number): Promise<MllpLink> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.off('error', reject);
        resolve(new MllpLink(socket));
      });
      socket.once('error', reject);
    });
  }

  private read(chunk: Buffer): void {
    this.received = this.received.length ? Buffer.concat([this.received, chunk]) : chunk;
    for (let end = this.received.indexOf(END); end >= 0; end = this.received.indexOf(END)) {
      const start = this.received.indexOf(VT);
      const ack = this.received.subarray(start + 1, end);
      this.received = this.received.subarray(end + END.length);
      const waiter = this.waiting.shift();
      if (!waiter) return this.fail(new Error(`an ACK nobody waited for:\n${readable(ack)}`));
      waiter.resolve(ack);
    }
  }

  private fail(err: Error): void {
    this.broken ??= err;
    this.waiting.splice(0).forEach((w) => w.reject(err));
  }

  /** Sends one framed message; resolves with its ACK (checked to be AA). */
  async send(message: Buffer): Promise<void> {
    if (this.broken) throw this.broken;
    const ack = new Promise<Buffer>((resolve, reject) => this.waiting.push({ resolve, reject }));
    this.socket.write(Buffer.concat([Buffer.of(VT), message, END]));
    expectAccepted('MLLP', await ack);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A free TCP port on the loopback interface. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Whether something accepts connections on the port within `ms`. */
export async function listening(port: number, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (performance.now() < deadline) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (open) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

function expectAccepted(transport: string, ack: Buffer, httpStatus?: number): void {
  const msa = ack.toString('latin1').split(/\r\n|\r|\n/).find((s) => s.startsWith('MSA|'));
  if (msa?.split('|')[1] === 'AA' && (httpStatus === undefined || httpStatus === 200)) return;
  const status = httpStatus === undefined ? '' : ` (HTTP ${httpStatus})`;
  throw new Error(`${transport} acknowledgment is not AA${status}:\n${readable(ack)}`);
}

function readable(ack: Buffer): string {
  try {
    return decodeMessage(ack).text.replace(/\r/g, '\n');
  } catch {
    return ack.toString('utf8').replace(/\r/g, '\n');
  }
}
