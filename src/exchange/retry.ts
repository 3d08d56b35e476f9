import type { ExchangeSettings } from './settings.js';

/**
 * Retry policy of deliveries: exponential backoff from `backoffMs`, capped at `backoffMaxMs`, with
 * jitter (each wait is drawn between half and all of its exponential value, so receivers coming back
 * from an outage are not hit by every sender at once). A delivery is given up (dead letter) after
 * `deliveryAttempts` attempts or once it is older than `deliveryMaxAgeSeconds`.
 */
export function backoffDelay(attemptsMade: number, settings: Pick<ExchangeSettings, 'backoffMs' | 'backoffMaxMs'>, random = Math.random): number {
  const exponent = Math.min(Math.max(attemptsMade - 1, 0), 30);
  const ceiling = Math.min(settings.backoffMs * 2 ** exponent, settings.backoffMaxMs);
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

export type RetryDecision = { retry: true; delayMs: number } | { retry: false; reason: string };

/** After a failed attempt (`attempts` counts it), whether and when to try again. */
export function afterFailure(
  attempts: number,
  createdAt: Date,
  settings: Pick<ExchangeSettings, 'backoffMs' | 'backoffMaxMs' | 'deliveryAttempts' | 'deliveryMaxAgeSeconds'>,
  maxAttempts = settings.deliveryAttempts,
  now = Date.now(),
): RetryDecision {
  if (attempts >= maxAttempts) return { retry: false, reason: `gave up after ${attempts} attempts` };
  const delayMs = backoffDelay(attempts, settings);
  if (now + delayMs - createdAt.getTime() > settings.deliveryMaxAgeSeconds * 1000)
    return { retry: false, reason: `gave up: older than ${settings.deliveryMaxAgeSeconds} s` };
  return { retry: true, delayMs };
}
