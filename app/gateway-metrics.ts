import { Counter, Gauge, type Registry } from 'prom-client';
import type { SecurityEvents } from '../audit/index.ts';
import type { Broker } from '../broker/index.ts';
import type { Ingest } from '../ingest/index.ts';

/**
 * Broker and ingest counters on the API's Prometheus registry. They are read from the components'
 * own counters at scrape time (collect), so the hot paths only increment plain numbers.
 */
export function registerGatewayMetrics(
  registry: Registry,
  deps: {
    broker: BrokerMetricsSource | undefined;
    ingest: Ingest;
    securityEvents?: Pick<SecurityEvents, 'counters'>;
  },
): void {
  // A `--role api` node has no broker: no MQTT metrics rather than zeros that look like an idle one.
  if (deps.broker) registerBrokerMetrics(registry, deps.broker);
  if (deps.securityEvents) registerSecurityEventMetrics(registry, deps.securityEvents);
  const c = deps.ingest.counters;
  new Counter({
    name: 'thamani_ingest_readings_accepted_total',
    help: 'Readings stored',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(c.accepted);
    },
  });
  new Counter({
    name: 'thamani_ingest_readings_duplicate_total',
    help: 'Readings acknowledged but already stored',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(c.duplicates);
    },
  });
  new Counter({
    name: 'thamani_ingest_readings_rejected_total',
    help: 'Readings quarantined, by reason',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [reason, n] of Object.entries(c.rejected)) this.inc({ reason }, n);
    },
  });
  new Counter({
    name: 'thamani_ingest_commits_total',
    help: 'Group-commit transactions',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(c.commits);
    },
  });
  new Gauge({
    name: 'thamani_ingest_mean_batch_rows',
    help: 'Mean readings per commit since start',
    registers: [registry],
    collect() {
      this.set(c.commits ? c.committedRows / c.commits : 0);
    },
  });
  new Gauge({
    name: 'thamani_ingest_mean_commit_seconds',
    help: 'Mean commit latency since start',
    registers: [registry],
    collect() {
      this.set(c.commits ? c.commitMsTotal / c.commits / 1000 : 0);
    },
  });
  new Gauge({
    name: 'thamani_ingest_pending_readings',
    help: 'Readings waiting for a commit',
    registers: [registry],
    collect() {
      this.set(deps.ingest.pending());
    },
  });
}

/**
 * Every refusal reported as a security event, by action, whether or not its aggregated record was
 * written; the records written, dropped (queue full: the database slow or away) and failed.
 */
export function registerSecurityEventMetrics(
  registry: Registry,
  events: Pick<SecurityEvents, 'counters'>,
): void {
  const c = events.counters;
  new Counter({
    name: 'thamani_security_events_total',
    help: 'Security events (refusals) reported, by action, including those aggregated or not written',
    labelNames: ['action'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [action, n] of Object.entries(c.events)) this.inc({ action }, n);
    },
  });
  const counter = (name: string, help: string, read: () => number): void => {
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  };
  counter(
    'thamani_security_event_records_written_total',
    'Aggregated security event records written to the audit store',
    () => c.recordsWritten,
  );
  counter(
    'thamani_security_event_records_dropped_total',
    'Aggregated security event records dropped because the write queue was full',
    () => c.recordsDropped,
  );
  counter(
    'thamani_security_events_dropped_total',
    'Security events in records dropped because the write queue was full',
    () => c.eventsDropped,
  );
  counter(
    'thamani_security_event_write_failures_total',
    'Aggregated security event records whose write failed',
    () => c.writeFailures,
  );
  counter(
    'thamani_security_events_overflowed_total',
    'Security events counted into an overflow record (more distinct sources than keys)',
    () => c.overflowed,
  );
}

type BrokerMetricsSource = Pick<
  Broker,
  'clients' | 'counters' | 'pendingConnections' | 'internalRejects'
>;

function registerBrokerMetrics(registry: Registry, b: BrokerMetricsSource): void {
  new Gauge({
    name: 'thamani_mqtt_connected_devices',
    help: 'Devices with a live MQTT session',
    registers: [registry],
    collect() {
      this.set(b.clients().length);
    },
  });
  const brokerCounter = (name: string, help: string, key: keyof Broker['counters']): void => {
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(b.counters[key]);
      },
    });
  };
  brokerCounter(
    'thamani_mqtt_connections_refused_total',
    'CONNECTs refused (certificate, status, clientId, credentials)',
    'connectionsRefused',
  );
  brokerCounter(
    'thamani_mqtt_publishes_denied_total',
    'Publishes refused by the topic policy',
    'publishesDenied',
  );
  brokerCounter(
    'thamani_mqtt_subscribes_denied_total',
    'Subscriptions refused by the topic policy',
    'subscribesDenied',
  );
  brokerCounter(
    'thamani_mqtt_packets_too_large_total',
    'Connections closed for an oversized packet',
    'packetsTooLarge',
  );
  brokerCounter(
    'thamani_mqtt_rate_limited_total',
    'Connections closed for a sustained publish flood (security.rate_limited)',
    'rateLimited',
  );
  brokerCounter(
    'thamani_mqtt_cut_offs_total',
    'Live sessions closed by revocation or suspension',
    'cutOffs',
  );
  brokerCounter(
    'thamani_mqtt_tls_refused_total',
    'TLS handshakes refused (no, foreign, expired or revoked certificate; protocol)',
    'tlsRefused',
  );
  brokerCounter(
    'thamani_mqtt_refused_before_handshake_total',
    'TCP connections closed on accept: too many sockets without CONNECT (per address or in total)',
    'refusedBeforeHandshake',
  );
  brokerCounter(
    'thamani_mqtt_connect_timeouts_total',
    'Connections destroyed for not finishing TLS and CONNECT within MQTT_CONNECT_TIMEOUT_MS',
    'connectTimeouts',
  );
  brokerCounter(
    'thamani_mqtt_connects_throttled_total',
    'CONNECTs refused with CONNACK 3: too many from one device in the window',
    'connectsThrottled',
  );
  new Gauge({
    name: 'thamani_mqtt_pending_connections',
    help: 'Accepted sockets that have not sent CONNECT yet',
    registers: [registry],
    collect() {
      this.set(b.pendingConnections());
    },
  });
  new Counter({
    name: 'thamani_device_input_internal_rejects_total',
    help: 'Device messages the gateway failed on (kept as INTERNAL_REJECT), and broker hooks that failed on device input (topic "hook:<name>"), by error class',
    labelNames: ['topic', 'error'],
    registers: [registry],
    collect() {
      this.reset();
      for (const x of b.internalRejects.values()) this.inc({ topic: x.topic, error: x.error }, x.n);
    },
  });
}
