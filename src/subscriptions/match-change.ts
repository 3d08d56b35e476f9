import type { Job } from 'bullmq';
import { recordMatches, type Change, type DeliveryJobRef } from '../exchange/deliveries.js';
import type { Database } from '../store/db.js';
import type { SubscriptionLifecycle } from './lifecycle.js';
import { subscribersOf } from './matcher.js';
import type { SpecCache } from './state.js';

export interface MatchDeps {
  db: Database;
  specs: SpecCache;
  lifecycle: SubscriptionLifecycle;
  enqueue(refs: DeliveryJobRef[]): Promise<void>;
}

/**
 * Processes a `changes` job (one committed change): a Subscription's own change drives its lifecycle;
 * then the subscriptions the change notifies get their delivery rows and the deliveries that may go now
 * are queued. Running it twice for the same change adds nothing (one delivery per subscription and
 * resource version) and re-queues only what is still pending.
 */
export function changeProcessor(deps: MatchDeps) {
  return async (job: Job<Change>): Promise<string> => {
    const change = job.data;
    if (change.resourceType === 'Subscription') await deps.lifecycle.onSubscriptionChange(change);
    const subscribers = await subscribersOf(deps.db, deps.specs, change);
    const queued = await recordMatches(deps.db, change, subscribers);
    await deps.enqueue(queued);
    return `${subscribers.length} subscription(s) notified`;
  };
}
