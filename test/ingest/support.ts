import net, { type AddressInfo } from 'node:net';
import { startMllpListener, type MllpListener } from '../../src/ingest/mllp.js';
import { frame, MllpDecoder } from '../../src/ingest/mllp-framing.js';
import { tokenSource } from '../support/fhir-client.js';
import { ADMIN_TOKEN, type TestStack } from '../support/stack.js';

export async function startMllp(stack: TestStack, options: { maxFrameBytes?: number } = {}): Promise<MllpListener> {
  return startMllpListener(stack.gateway.services, 0, { host: '127.0.0.1', ...options });
}

/** Registers a client for an Organization (which must exist) and returns its id and a token. */
export async function registerClient(stack: TestStack, orgId: string, scope?: string): Promise<{ clientId: string; token: string }> {
  const reg = await fetch(`${stack.url}/admin/clients`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ organization: `Organization/${orgId}`, name: `sender ${orgId}`, ...(scope ? { scope } : {}) }),
  });
  const { client_id: clientId, client_secret: secret } = (await reg.json()) as { client_id: string; client_secret: string };
  const token = await tokenSource(stack, clientId, secret, scope)();
  return { clientId, token };
}

export async function putOrganization(stack: TestStack, id: string, identifiers: { system: string; value: string }[], extra: Record<string, unknown> = {}): Promise<void> {
  const res = await fetch(`${stack.url}/fhir/Organization/${id}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/fhir+json' },
    body: JSON.stringify({ resourceType: 'Organization', id, name: `機関 ${id}`, identifier: identifiers, ...extra }),
  });
  if (res.status >= 300) throw new Error(`Organization ${id}: ${res.status} ${await res.text()}`);
}

/** An Organization with one identifier (医療機関コード, 事業所番号) and a client of its own: the client's token. */
export async function registerSender(stack: TestStack, id: string, system: string, value: string): Promise<string> {
  await putOrganization(stack, id, [{ system, value }]);
  return (await registerClient(stack, id)).token;
}

export interface HttpAnswer {
  status: number;
  text: string;
  bytes: Buffer;
  contentType: string;
  location?: string;
}

export async function post(url: string, token: string | undefined, body: Uint8Array | string, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), 'content-type': 'application/hl7-v2', ...headers },
    body: typeof body === 'string' ? body : Buffer.from(body),
  });
  const bytes = Buffer.from(await res.arrayBuffer());
  return { status: res.status, text: bytes.toString('utf8'), bytes, contentType: res.headers.get('content-type') ?? '', location: res.headers.get('location') ?? undefined };
}

/** MSA-1 and the ERR segments of an ACK (its text already decoded). */
export function ackOf(text: string): { code: string; control: string; errors: string[]; msa: string } {
  const segments = text.split('\r').filter(Boolean);
  const msa = segments.find((s) => s.startsWith('MSA|')) ?? '';
  return { code: msa.split('|')[1], control: msa.split('|')[2], errors: segments.filter((s) => s.startsWith('ERR|')), msa };
}

/** An MLLP client: sends frames (whole or in pieces) and collects the ACK frames in order. */
export class MllpClient {
  private readonly socket: net.Socket;
  private readonly decoder = new MllpDecoder(16 * 1024 * 1024);
  private readonly acks: Buffer[] = [];
  private waiters: (() => void)[] = [];
  readonly closed: Promise<void>;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      for (const event of this.decoder.push(chunk)) if (event.type === 'frame') this.acks.push(event.bytes);
      this.waiters.splice(0).forEach((w) => w());
    });
    this.closed = new Promise((resolve) => socket.once('close', () => {
      this.waiters.splice(0).forEach((w) => w());
      resolve();
    }));
  }

  static connect(port: number): Promise<MllpClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => resolve(new MllpClient(socket)));
      socket.once('error', reject);
    });
  }

  send(message: Uint8Array): void {
    this.socket.write(frame(message));
  }

  write(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  /** Waits until `count` ACKs have arrived in all (or the connection closed). */
  async receive(count: number): Promise<Buffer[]> {
    while (this.acks.length < count && !this.socket.destroyed) await new Promise<void>((resolve) => this.waiters.push(resolve));
    return this.acks.slice(0, count);
  }

  close(): void {
    this.socket.end();
  }
}
