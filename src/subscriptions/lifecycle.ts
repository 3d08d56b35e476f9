import type { Subscription } from '@medplum/fhirtypes';
import { createControlDelivery, type Change, type DeliveryJobRef } from '../exchange/deliveries.js';
import type { Caller } from '../fhir/caller.js';
import { FhirError } from '../fhir/outcome.js';
import type { FhirService } from '../fhir/service.js';
import { log } from '../logger.js';
import { DEFAULT_PURPOSE } from '../store/access.js';
import type { Database } from '../store/db.js';
import { hostOf, resolveEndpoint, type EndpointPolicy } from './endpoint-policy.js';
import { parseSubscription, type SubscriptionSpec } from './spec.js';
import { countFailure, followVersion, readState, saveState, type StateRow, type SubscriptionStatus } from './state.js';
import { announceSubscriptionOff } from './websocket/channel.js';
import { publishTopics } from './topic-publisher.js';

/** The gateway itself, when it writes a Subscription's status. */
export const GATEWAY_CALLER: Caller = { admin: true, clientId: 'renkei-exchange', purposeOfUse: 'HOPERAT' };

export interface LifecycleDeps {
  db: Database;
  fhir: FhirService;
  policy: EndpointPolicy;
  /** Failed attempts in a row after which an active subscription goes to error. */
  errorAfter: number;
  enqueue(refs: DeliveryJobRef[]): Promise<void>;
}

/**
 * A Subscription's status: `requested` → `active` (a topic-based one after its handshake was answered)
 * → `error` once a notification is a dead letter or `errorAfter` attempts failed in a row (a subscription
 * whose notifications are being retried is still active; back to `active` on the next delivered
 * notification, a heartbeat included) → `off` (by the client, or at Subscription.end). The running state
 * is kept in subscription_state; only a change of status is written into the Subscription resource
 * (status, error) as a new version, so a client reading it sees where it stands.
 */
export class SubscriptionLifecycle {
  private topicsPublished = false;

  constructor(private readonly deps: LifecycleDeps) {}

  /** A Subscription was created, changed or deleted (by a client, or by the gateway's own status write). */
  async onSubscriptionChange(change: Change): Promise<void> {
    const { db } = this.deps;
    const { rows } = await db.query<{ version_id: number; deleted: boolean; owner: string | null; json: string | null }>(
      `SELECT version_id, deleted, owner, content::text AS json FROM resource WHERE resource_type = 'Subscription' AND id = $1`,
      [change.id],
    );
    const current = rows[0];
    if (!current || current.deleted) {
      await db.query(`UPDATE subscription_state SET status = 'off', next_heartbeat_at = NULL, updated_at = now() WHERE id = $1`, [change.id]);
      return announceSubscriptionOff(db, change.id);
    }
    if (current.version_id !== change.versionId) return; // a later change of it follows
    const state = await readState(db, change.id);
    if (state && state.version_id >= change.versionId) return; // the gateway's own status write
    await this.ensureTopics();
    const subscription = JSON.parse(current.json!) as Subscription;
    let spec: SubscriptionSpec;
    try {
      spec = parseSubscription({ ...subscription, id: change.id });
    } catch (err) {
      await this.fail(stateOf(change.id, current.owner, change.versionId, undefined), (err as Error).message);
      return;
    }
    const base = stateOf(change.id, current.owner, change.versionId, spec);
    if (subscription.status === 'off') {
      await saveState(db, { ...base, status: 'off' });
      return announceSubscriptionOff(db, change.id);
    }
    if (!current.owner) return this.fail(base, 'A Subscription needs the Organization it notifies / 通知先の機関がありません');
    if (state && (state.status === 'active' || state.status === 'error') && subscription.status === state.status) {
      // An already running subscription was edited (endpoint, headers, filters): it keeps running.
      return saveState(db, { ...base, status: state.status, lastError: state.last_error });
    }
    await this.activate(base, spec);
  }

  /**
   * A rest-hook endpoint must be one the policy allows; a topic-based one is active once its handshake
   * is answered. A websocket has no endpoint: it is active at once, and its handshake goes to each client
   * as it binds.
   */
  private async activate(base: StateRow, spec: SubscriptionSpec): Promise<void> {
    if (spec.channel === 'rest-hook') {
      try {
        await resolveEndpoint(hostOf(new URL(spec.endpoint)), this.deps.policy);
      } catch (err) {
        return this.fail(base, `Endpoint refused: ${(err as Error).message}`);
      }
      if (spec.kind === 'topic') {
        await saveState(this.deps.db, { ...base, status: 'requested' });
        await this.deps.enqueue([await createControlDelivery(this.deps.db, base.id, base.owner, 'handshake')]);
        return;
      }
    }
    await saveState(this.deps.db, { ...base, status: 'active' });
    await this.writeStatus(base.id, 'active', null);
  }

  private async fail(base: StateRow, error: string): Promise<void> {
    await saveState(this.deps.db, { ...base, status: 'error', lastError: error });
    await this.writeStatus(base.id, 'error', error);
  }

  /**
   * A notification attempt failed (`final`: it will not be tried again). A handshake that gave up and an
   * event that became a dead letter move the subscription to error at once; otherwise it goes there after
   * `errorAfter` failures in a row (a heartbeat has one attempt and is no dead letter: it only counts).
   */
  async deliveryFailed(subscriptionId: string, kind: 'event' | 'handshake' | 'heartbeat', error: string, final: boolean): Promise<void> {
    const from: SubscriptionStatus[] = kind === 'handshake' ? (final ? ['requested'] : []) : ['active'];
    const errorAfter = (kind === 'event' || kind === 'handshake') && final ? null : this.deps.errorAfter;
    if (await countFailure(this.deps.db, subscriptionId, error, from, errorAfter)) {
      log.info({ subscription: subscriptionId, kind }, 'subscription in error');
      await this.writeStatus(subscriptionId, 'error', error);
    }
  }

  /** Subscriptions a delivered notification made active (handshake answered, or recovered from error). */
  async activated(ids: string[]): Promise<void> {
    for (const id of ids) await this.writeStatus(id, 'active', null);
  }

  /** Subscription.end has passed. */
  async expired(id: string): Promise<void> {
    await announceSubscriptionOff(this.deps.db, id);
    await this.writeStatus(id, 'off', null);
  }

  /** Writes status (and error) into the Subscription resource, unless a client changed it meanwhile. */
  async writeStatus(id: string, status: SubscriptionStatus, error: string | null): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const { rows } = await this.deps.db.query<{ version_id: number; json: string }>(
        `SELECT version_id, content::text AS json FROM resource WHERE resource_type = 'Subscription' AND id = $1 AND NOT deleted`, [id]);
      if (!rows[0]) return;
      const current = JSON.parse(rows[0].json) as Subscription;
      if (current.status === status && (current.error ?? null) === error) return;
      const { meta: _meta, error: _error, ...rest } = current;
      const body: Subscription = { ...rest, status, ...(error ? { error: error.slice(0, 500) } : {}) };
      try {
        const result = await this.deps.fhir.update(GATEWAY_CALLER, 'Subscription', id, body, rows[0].version_id);
        if (result.versionId) await followVersion(this.deps.db, id, result.versionId);
        return;
      } catch (err) {
        if (err instanceof FhirError && err.status === 412) continue; // changed meanwhile: read it again
        log.warn({ subscription: id, status, err: (err as Error).message }, 'subscription status not written');
        return;
      }
    }
  }

  private async ensureTopics(): Promise<void> {
    if (this.topicsPublished) return;
    await publishTopics(this.deps.fhir, this.deps.db, GATEWAY_CALLER);
    this.topicsPublished = true;
  }
}

function stateOf(id: string, owner: string | null, versionId: number, spec: SubscriptionSpec | undefined): StateRow {
  return {
    id, owner, versionId,
    kind: spec?.kind ?? 'criteria',
    status: 'requested',
    resourceTypes: spec?.resourceTypes ?? [],
    heartbeatSeconds: spec?.heartbeatSeconds,
    endAt: spec?.end,
    purpose: spec?.purpose ?? DEFAULT_PURPOSE,
  };
}
