import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** The answer the receiver gave. */
  status: number;
}

type Answer = (req: ReceivedRequest, index: number) => number | Promise<number>;

/**
 * A webhook receiver for tests: a real local HTTP server that records every request, answers as told
 * (200 by default) and applies each notification once, dropping a repeated X-Renkei-Idempotency-Key as
 * a careful receiver does.
 */
export class Receiver {
  readonly requests: ReceivedRequest[] = [];
  /** Notifications applied, in arrival order: the first accepted request of each idempotency key. */
  readonly applied: ReceivedRequest[] = [];
  private readonly seen = new Set<string>();
  private answer: Answer = () => 200;
  private waiters: (() => void)[] = [];

  private constructor(private readonly server: http.Server, readonly url: string) {}

  static async start(): Promise<Receiver> {
    let receiver: Receiver | undefined;
    const server = http.createServer((req, res) => void receiver!.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    receiver = new Receiver(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    return receiver;
  }

  /** How to answer from now on (status code, possibly after a wait). */
  answerWith(answer: Answer): void {
    this.answer = answer;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const received: ReceivedRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), status: 0 };
    const index = this.requests.length;
    this.requests.push(received);
    received.status = await this.answer(received, index);
    const key = String(req.headers['x-renkei-idempotency-key'] ?? '');
    if (received.status >= 200 && received.status < 300 && !this.seen.has(key)) {
      this.seen.add(key);
      this.applied.push(received);
    }
    res.writeHead(received.status, received.status >= 300 && received.status < 400 ? { location: `${this.url}/moved` } : {});
    res.end();
    for (const wake of this.waiters.splice(0)) wake();
  }

  /** Waits until `done()` holds (checked after every request), failing after `ms`. */
  async waitUntil(done: () => boolean, ms = 20_000, what = 'the expected notifications'): Promise<void> {
    const deadline = Date.now() + ms;
    while (!done()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; got ${this.requests.length} request(s)`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 250));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  json(request: ReceivedRequest): any {
    return request.body ? JSON.parse(request.body) : undefined;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
