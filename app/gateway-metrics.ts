import { Counter, Gauge, type Registry } from 'prom-client';
import type { Broker } from '../broker/index.ts';
import type { Ingest } from '../ingest/index.ts';

/**
 * Broker and ingest counters on the API's Prometheus registry. They are read from the components'
 * own counters at scrape time (collect), so the hot paths only increment plain numbers.
 */
export function registerGatewayMetrics(registry: Registry, deps: { broker: () => Broker | undefined; ingest: Ingest }): void {
  const b = (): Broker | undefined => {
    try {
      return deps.broker();
    } catch {
      return undefined; // not built yet
    }
  };
  new Gauge({ name: 'thamani_mqtt_connected_devices', help: 'Devices with a live MQTT session', registers: [registry], collect() { this.set(b()?.clients().length ?? 0); } });
  const brokerCounter = (name: string, help: string, key: keyof Broker['counters']): void => {
    new Counter({ name, help, registers: [registry], collect() { this.reset(); this.inc(b()?.counters[key] ?? 0); } });
  };
  brokerCounter('thamani_mqtt_connections_refused_total', 'CONNECTs refused (certificate, status, clientId, credentials)', 'connectionsRefused');
  brokerCounter('thamani_mqtt_publishes_denied_total', 'Publishes refused by the topic policy', 'publishesDenied');
  brokerCounter('thamani_mqtt_subscribes_denied_total', 'Subscriptions refused by the topic policy', 'subscribesDenied');
  brokerCounter('thamani_mqtt_packets_too_large_total', 'Connections closed for an oversized packet', 'packetsTooLarge');
  brokerCounter('thamani_mqtt_rate_limited_total', 'Connections closed for a sustained publish flood', 'rateLimited');
  brokerCounter('thamani_mqtt_cut_offs_total', 'Live sessions closed by revocation or suspension', 'cutOffs');
  new Counter({
    name: 'thamani_device_input_internal_rejects_total',
    help: 'Device messages the gateway failed on (kept as INTERNAL_REJECT), and broker hooks that failed on device input (topic "hook:<name>"), by error class',
    labelNames: ['topic', 'error'],
    registers: [registry],
    collect() {
      this.reset();
      for (const x of b()?.internalRejects.values() ?? []) this.inc({ topic: x.topic, error: x.error }, x.n);
    },
  });
  const c = deps.ingest.counters;
  new Counter({ name: 'thamani_ingest_readings_accepted_total', help: 'Readings stored', registers: [registry], collect() { this.reset(); this.inc(c.accepted); } });
  new Counter({ name: 'thamani_ingest_readings_duplicate_total', help: 'Readings acknowledged but already stored', registers: [registry], collect() { this.reset(); this.inc(c.duplicates); } });
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
  new Counter({ name: 'thamani_ingest_commits_total', help: 'Group-commit transactions', registers: [registry], collect() { this.reset(); this.inc(c.commits); } });
  new Gauge({ name: 'thamani_ingest_mean_batch_rows', help: 'Mean readings per commit since start', registers: [registry], collect() { this.set(c.commits ? c.committedRows / c.commits : 0); } });
  new Gauge({ name: 'thamani_ingest_mean_commit_seconds', help: 'Mean commit latency since start', registers: [registry], collect() { this.set(c.commits ? c.commitMsTotal / c.commits / 1000 : 0); } });
  new Gauge({ name: 'thamani_ingest_pending_readings', help: 'Readings waiting for a commit', registers: [registry], collect() { this.set(deps.ingest.pending()); } });
}
