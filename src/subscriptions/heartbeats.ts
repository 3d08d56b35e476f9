import { createControlDelivery, type DeliveryJobRef } from '../exchange/deliveries.js';
import { log } from '../logger.js';
import type { Database } from '../store/db.js';
import type { SubscriptionLifecycle } from './lifecycle.js';

/**
 * Every tick: subscriptions past Subscription.end are turned off, and a topic-based subscription that
 * has delivered nothing for its heartbeat period gets a heartbeat notification, also while it is in
 * error (with that status and error): a delivered heartbeat is how a recovered endpoint is noticed, and
 * it makes the subscription active again. Each due
 * heartbeat is claimed by moving its next time forward in the same statement, so several worker
 * processes never send the same one twice.
 */
export class HeartbeatTicker {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly db: Database,
    private readonly lifecycle: SubscriptionLifecycle,
    private readonly enqueue: (refs: DeliveryJobRef[]) => Promise<void>,
    private readonly tickMs: number,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      this.running ??= this.tick()
        .catch((err: Error) => log.warn({ err: err.message }, 'heartbeat tick failed'))
        .finally(() => (this.running = undefined));
    }, this.tickMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  async tick(): Promise<void> {
    const { rows: expired } = await this.db.query<{ id: string }>(
      `UPDATE subscription_state SET status = 'off', next_heartbeat_at = NULL, updated_at = now()
       WHERE end_at <= now() AND status <> 'off' RETURNING id`);
    for (const { id } of expired) await this.lifecycle.expired(id);
    const { rows: due } = await this.db.query<{ id: string; owner: string | null }>(
      `UPDATE subscription_state SET next_heartbeat_at = now() + heartbeat_seconds * interval '1 second'
       WHERE next_heartbeat_at <= now() AND status IN ('active', 'error') AND heartbeat_seconds IS NOT NULL RETURNING id, owner`);
    if (!due.length) return;
    const refs: DeliveryJobRef[] = [];
    for (const s of due) refs.push(await createControlDelivery(this.db, s.id, s.owner, 'heartbeat'));
    await this.enqueue(refs);
  }
}
