import client from 'prom-client';

export const registry = new client.Registry();
client.collectDefaultMetrics({ register: registry });

export const httpRequests = new client.Counter({
  name: 'renkei_http_requests_total',
  help: 'HTTP requests by route and status',
  labelNames: ['method', 'route', 'status'] as const,
  registers: [registry],
});

export const httpDuration = new client.Histogram({
  name: 'renkei_http_request_duration_seconds',
  help: 'HTTP request latency by route',
  labelNames: ['method', 'route'] as const,
  buckets: [0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  registers: [registry],
});

export const storeDuration = new client.Histogram({
  name: 'renkei_store_operation_duration_seconds',
  help: 'Store operation latency by operation',
  labelNames: ['operation'] as const,
  buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1],
  registers: [registry],
});

/** Times an async store operation into storeDuration. */
export async function timed<T>(operation: string, fn: () => Promise<T>): Promise<T> {
  const end = storeDuration.startTimer({ operation });
  try {
    return await fn();
  } finally {
    end();
  }
}
