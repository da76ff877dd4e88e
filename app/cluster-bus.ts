import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { Logger } from 'pino';
import type { Queryable } from '../db/timeseries.ts';
import { clusterRepo } from './cluster-repo.ts';

/**
 * Messages between the nodes sharing one database, over PostgreSQL LISTEN/NOTIFY (ADR 0011): the
 * live dashboards' events (a reading ingested on node B reaches a manager watching node A) and
 * "a rollout changed, tick" for the firmware leader. NOTIFY carries at most 8000 bytes, so a
 * sender keeps each message small (ids and the coalesced latest values, never raw batches) and
 * splits what is larger. Delivery is at most once and only to nodes listening at that moment:
 * what must not be lost lives in tables, not here. One dedicated connection listens; when it is
 * lost one loop reconnects with a growing delay (as devices/device-events.ts).
 */

export const CLUSTER_CHANNEL = 'thamani_cluster';
/** Below PostgreSQL's 8000-byte NOTIFY payload limit, with room for the envelope. */
export const MAX_MESSAGE_BYTES = 7000;

export type BusKind = 'live' | 'firmware-tick' | 'alert-rules';

export interface ClusterBus {
  /** This node's id (its own messages are not handed back to it). */
  readonly nodeId: string;
  /**
   * `via`: a transaction's connection; the message then leaves at its commit, and not at all if
   * it rolls back (NOTIFY is transactional). `toSelf`: this node's own handlers get it too.
   */
  send(kind: BusKind, body: unknown, opts?: { via?: Queryable; toSelf?: boolean }): Promise<void>;
  on(kind: BusKind, handler: (body: unknown) => void): void;
  /**
   * LISTEN is back after its connection was lost: messages sent meanwhile were missed, so what
   * they would have told must be read again from the tables.
   */
  onRelisten(handler: () => void): void;
  /** LISTEN is in place right now (readiness). */
  listening(): boolean;
  ready: Promise<void>;
  close(): Promise<void>;
}

export function createClusterBus(deps: {
  url: string;
  /** Sends go through the pool; LISTEN needs a session of its own. */
  pool: Pick<pg.Pool, 'query'>;
  logger: Logger;
  maxDelayMs?: number;
}): ClusterBus {
  const nodeId = randomUUID();
  const handlers = new Map<BusKind, ((body: unknown) => void)[]>();
  const relisten: (() => void)[] = [];
  let client: pg.Client | undefined;
  let closed = false;
  let reconnecting = false;
  let timer: NodeJS.Timeout | undefined;
  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (markReady = resolve));

  const deliver = (payload: string): void => {
    let msg: { n?: unknown; k?: unknown; b?: unknown; s?: unknown };
    try {
      msg = JSON.parse(payload) as typeof msg;
    } catch (err) {
      deps.logger.error({ err }, 'malformed cluster message');
      return;
    }
    if (msg.n === nodeId && msg.s !== true) return;
    for (const h of handlers.get(msg.k as BusKind) ?? []) {
      try {
        h(msg.b);
      } catch (err) {
        deps.logger.error({ err, kind: msg.k }, 'a cluster message handler failed');
      }
    }
  };

  async function connect(): Promise<pg.Client> {
    const c = new pg.Client({
      connectionString: deps.url,
      application_name: 'thamani-cluster-bus',
      keepAlive: true,
      connectionTimeoutMillis: 10_000,
    });
    c.on('notification', (m) => {
      if (m.channel === CLUSTER_CHANNEL && m.payload) deliver(m.payload);
    });
    c.on('error', (err) => deps.logger.warn({ err }, 'cluster bus connection failed'));
    try {
      await c.connect();
      await clusterRepo.listen(c, CLUSTER_CHANNEL);
    } catch (err) {
      await c.end().catch(() => undefined);
      throw err;
    }
    c.once('end', () => {
      if (client !== c) return;
      client = undefined;
      if (!closed) void reconnect(true);
    });
    return c;
  }

  async function reconnect(lost: boolean): Promise<void> {
    if (reconnecting) return;
    reconnecting = true;
    let delay = 250;
    if (lost) deps.logger.warn('cluster bus: LISTEN connection lost; reconnecting');
    try {
      while (!closed && !client) {
        try {
          const c = await connect();
          if (closed) await c.end().catch(() => undefined);
          else client = c;
        } catch (err) {
          deps.logger.warn({ err, retryInMs: delay }, 'cluster bus: connection failed; retrying');
          await new Promise<void>((resolve) => {
            timer = setTimeout(resolve, delay);
            timer.unref();
          });
          delay = Math.min(delay * 2, deps.maxDelayMs ?? 10_000);
        }
      }
    } finally {
      reconnecting = false;
    }
    if (client) {
      markReady();
      if (lost) {
        deps.logger.info('cluster bus: listening again');
        for (const h of relisten) {
          try {
            h();
          } catch (err) {
            deps.logger.error({ err }, 'a cluster bus relisten handler failed');
          }
        }
      }
    }
  }
  void reconnect(false);

  return {
    nodeId,
    async send(kind, body, opts) {
      const payload = JSON.stringify({
        n: nodeId,
        k: kind,
        b: body,
        ...(opts?.toSelf ? { s: true } : {}),
      });
      if (Buffer.byteLength(payload) > MAX_MESSAGE_BYTES)
        throw new Error(`cluster message of ${Buffer.byteLength(payload)} bytes is too large`);
      await clusterRepo.notify(opts?.via ?? deps.pool, CLUSTER_CHANNEL, payload);
    },
    on(kind, handler) {
      handlers.set(kind, [...(handlers.get(kind) ?? []), handler]);
    },
    onRelisten(handler) {
      relisten.push(handler);
    },
    listening: () => client !== undefined,
    ready,
    async close() {
      closed = true;
      clearTimeout(timer);
      await client?.end().catch(() => undefined);
    },
  };
}
