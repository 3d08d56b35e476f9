import pg from 'pg';
import { log } from '../logger.js';

/** The channel a commit that adds outbox rows notifies (trigger outbox_wake, migration 007). */
export const OUTBOX_CHANNEL = 'renkei_outbox';
const RECONNECT_MS = 1000;

/**
 * Listens on PostgreSQL for committed outbox rows and calls `wake` for each notification, so the relay
 * moves a change as soon as it commits instead of at its next poll. Reconnects after a lost connection
 * (the relay's polling covers the gap). Not for the embedded store: its connections share one session.
 */
export class OutboxListener {
  private client: pg.Client | undefined;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly url: string, private readonly wake: () => void) {}

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
    client.on('notification', () => this.wake());
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client));
    try {
      await client.connect();
      await client.query(`LISTEN ${OUTBOX_CHANNEL}`);
      if (this.stopped) return void (await client.end());
      this.client = client;
      this.wake(); // rows committed while not listening
    } catch (err) {
      this.lost(client, err as Error);
    }
  }

  private lost(client: pg.Client, err?: Error): void {
    if (this.client === client) this.client = undefined;
    client.end().catch(() => {});
    if (this.stopped || this.timer) return;
    if (err) log.warn({ err: err.message }, 'outbox listener disconnected; polling until it reconnects');
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.connect();
    }, RECONNECT_MS);
  }
}
