import pg from 'pg';
import { log } from '../logger.js';

const RECONNECT_MS = 1000;

/**
 * Listens on one PostgreSQL channel (LISTEN) on a connection of its own and calls `notified` with each
 * notification's payload; `notified` is also called without one once listening starts (after a reconnect
 * too), since what was notified while not listening is lost. Reconnects after a lost connection. Not for
 * the embedded store: its connections share one session.
 */
export class ChannelListener {
  private client: pg.Client | undefined;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly url: string, private readonly channel: string, private readonly notified: (payload?: string) => void) {}

  /** True while a connection is listening. */
  get listening(): boolean {
    return this.client !== undefined;
  }

  start(): void {
    void this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => {});
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const client = new pg.Client({ connectionString: this.url });
    client.on('notification', (message) => this.notified(message.payload));
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client));
    try {
      await client.connect();
      await client.query(`LISTEN ${pg.escapeIdentifier(this.channel)}`);
      if (this.stopped) return void (await client.end());
      this.client = client;
      this.notified(); // what was notified while not listening
    } catch (err) {
      this.lost(client, err as Error);
    }
  }

  private lost(client: pg.Client, err?: Error): void {
    if (this.client === client) this.client = undefined;
    client.end().catch(() => {});
    if (this.stopped || this.timer) return;
    if (err) log.warn({ channel: this.channel, err: err.message }, 'channel listener disconnected; reconnecting');
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.connect();
    }, RECONNECT_MS);
  }
}
