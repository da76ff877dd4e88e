import type pg from 'pg';
import type { Logger } from 'pino';
import type { Config } from '../config/index.ts';
import { asQueryable, type DbExecutor } from '../db/scoped.ts';
import type { AlertService } from '../dashboards/alert-service.ts';
import { createLiveHub, type LiveHub } from '../dashboards/live-hub.ts';
import type { FirmwareService } from '../firmware/firmware-service.ts';
import type { RowIn } from '../ingest/batch-writer.ts';
import { createClusterBus, type ClusterBus } from './cluster-bus.ts';
import { createLeaderLease, type LeaderLease } from './leader-lease.ts';
import type { Lifecycle } from './lifecycle.ts';
import { receiveFromBus, relayToBus } from './live-relay.ts';

/**
 * What makes several nodes on one database one system (ADR 0011): the cluster bus (LISTEN/NOTIFY)
 * that carries the live hub's events between nodes, and the leases that make one node evaluate
 * alerts and one gateway node run the firmware rollout timer. A single node is a cluster of one:
 * it takes both leases at once and nothing else changes.
 */
export interface Cluster {
  bus: ClusterBus;
  hub: LiveHub;
  alertsLease: LeaderLease;
  /** Only nodes with a broker take part: the rollout timer publishes manifests. */
  firmwareLease: LeaderLease | undefined;
}

export async function openCluster(deps: {
  url: string;
  pool: Pick<pg.Pool, 'query'>;
  config: Pick<Config, 'role' | 'coordination'>;
  logger: Logger;
  lifecycle: Lifecycle;
}): Promise<Cluster> {
  const logger = deps.logger.child({ component: 'cluster' });
  const bus = createClusterBus({ url: deps.url, pool: deps.pool, logger });
  deps.lifecycle.onStop('cluster-bus', () => bus.close());
  await bus.ready;
  const hub = createLiveHub({ relay: relayToBus(bus, logger) });
  deps.lifecycle.onStop('live-updates', () => hub.close());
  const lease = (duty: 'alerts' | 'firmware'): LeaderLease => {
    const l = createLeaderLease({
      url: deps.url,
      duty,
      logger,
      checkMs: deps.config.coordination.leaseCheckMs,
    });
    // Stopped before the components it drives stop (registered after them it would stop first).
    deps.lifecycle.onStop(`lease-${duty}`, () => l.close());
    return l;
  };
  return {
    bus,
    hub,
    alertsLease: lease('alerts'),
    firmwareLease: deps.config.role === 'api' ? undefined : lease('firmware'),
  };
}

/**
 * Alert evaluation on the alert leader only: the readings this node stored and those other nodes
 * stored (through the bus), and the periodic sweep. A node that becomes leader forgets what it
 * knew of open alerts (another node moved them meanwhile) and sweeps at once. Returns what
 * ingest's onStored calls for this node's own readings (`stored`), and what the API calls when
 * rules or a unit's overrides changed (`rulesChanged`): the leader may be another node, so the
 * change goes over the bus to every node, and a node whose LISTEN was lost meanwhile (the bus
 * delivers at most once) reloads them when it listens again.
 */
export function runAlertsOnLeader(
  cluster: Cluster,
  deps: {
    alerts: Pick<AlertService, 'stored' | 'sweep' | 'reset' | 'settled' | 'invalidateRules'>;
    sweepMs: number;
    logger: Logger;
    lifecycle: Lifecycle;
  },
): {
  stored: (rows: readonly RowIn[]) => void;
  rulesChanged: (tx: DbExecutor) => Promise<void>;
} {
  const { alerts, lifecycle } = deps;
  const lease = cluster.alertsLease;
  receiveFromBus(cluster.bus, {
    hub: cluster.hub,
    logger: deps.logger,
    onRemoteReadings: (readings) => {
      if (!lease.isLeader()) return;
      alerts.stored(
        readings.map((r) => ({
          deviceId: r.deviceId,
          unitId: r.unitId,
          ts: new Date(r.ts),
          values: r.values,
        })),
      );
    },
  });
  lease.onChange((leader) => {
    if (!leader) return;
    alerts.reset();
    void alerts.sweep();
  });
  // (Already leader before this ran: a node alone takes the lease within its first check.)
  if (lease.isLeader()) void alerts.sweep();
  const timer = setInterval(() => {
    if (lease.isLeader()) void alerts.sweep();
  }, deps.sweepMs);
  timer.unref();
  lifecycle.onStop('alerts', async () => {
    clearInterval(timer);
    await alerts.settled();
  });
  cluster.bus.on('alert-rules', () => {
    alerts.invalidateRules();
    // A rule switched off closes its open alerts in the sweep: at once, not a sweep later.
    if (lease.isLeader()) void alerts.sweep();
  });
  cluster.bus.onRelisten(() => alerts.invalidateRules());
  return {
    stored: (rows) => {
      if (lease.isLeader()) alerts.stored(rows);
    },
    // Said in the changing transaction: every node, this one included, hears it at the commit,
    // so none reloads before the change is there to read (and none at all if it rolls back).
    rulesChanged: (tx) =>
      cluster.bus.send('alert-rules', {}, { via: asQueryable(tx), toSelf: true }),
  };
}

/**
 * The firmware rollout timer on the firmware leader only (a gateway node). A rollout changed
 * through the API of any node asks for a tick: the leader ticks at once, another node asks the
 * leader over the bus. The per-device claim in the rollout engine (firmware-repo claimSend) keeps
 * each manifest to one send even when two nodes tick at once (a report, a handover).
 */
export function runFirmwareOnLeader(
  cluster: Cluster,
  deps: {
    firmware: Pick<FirmwareService, 'tick'>;
    tickMs: number;
    logger: Logger;
    lifecycle: Lifecycle;
  },
): () => Promise<void> {
  const lease = cluster.firmwareLease;
  const tickHere = (): Promise<void> => deps.firmware.tick();
  if (lease) {
    const timer = setInterval(() => {
      if (lease.isLeader()) void tickHere();
    }, deps.tickMs);
    timer.unref();
    deps.lifecycle.onStop('firmware-rollouts', () => clearInterval(timer));
    lease.onChange((leader) => {
      if (leader) void tickHere();
    });
    cluster.bus.on('firmware-tick', () => {
      if (lease.isLeader()) void tickHere();
    });
  }
  return async () => {
    if (lease?.isLeader()) return tickHere();
    await cluster.bus
      .send('firmware-tick', {})
      .catch((err: unknown) =>
        deps.logger.warn({ err }, 'could not ask the firmware leader to tick'),
      );
  };
}
