import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';

/**
 * The one Prometheus registry. Created by the composition root and passed to whoever counts
 * something (broker, ingest register their counters on it); /metrics serialises it.
 */
export function createMetricsRegistry(opts: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry();
  if (opts.defaultMetrics ?? true)
    collectDefaultMetrics({ register: registry, prefix: 'thamani_' });
  const httpRequests = new Counter({
    name: 'thamani_http_requests_total',
    help: 'HTTP requests served by the API, by route and status',
    labelNames: ['method', 'route', 'status'],
    registers: [registry],
  });
  const httpDuration = new Histogram({
    name: 'thamani_http_request_duration_seconds',
    help: 'HTTP request duration by route',
    labelNames: ['method', 'route'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  return { registry, httpRequests, httpDuration };
}

export type Metrics = ReturnType<typeof createMetricsRegistry>;
