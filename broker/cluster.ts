import { createRequire } from 'node:module';
import { Redis, type RedisOptions } from 'ioredis';
import type mqemitter from 'mqemitter';
import type { Logger } from 'pino';

/**
 * Aedes' own clustering on one Redis (ADR 0010): `mqemitter-redis` carries every publish between
 * nodes (and Aedes' `$SYS/<node>/new/clients`, by which a node closes its session of a client
 * that connected elsewhere [MQTT-3.1.4-2]); `aedes-persistence-redis` keeps sessions,
 * subscriptions and queued QoS 1 messages of offline devices, so that a device finds them on
 * whichever node it reconnects to, and they survive a restart of every node.
 *
 * The three connections are ours, made here with bounded timeouts, so that their errors are
 * handled (an unhandled 'error' on an ioredis client would end the process) and a command never
 * waits for a Redis that is down: it fails after one reconnect attempt (`maxRetriesPerRequest`).
 */

// Both are CommonJS without an ES default export; loaded as Aedes loads its own defaults.
const require = createRequire(import.meta.url);
const redisPersistence = require('aedes-persistence-redis') as (opts: {
  conn: Redis;
  maxSessionDelivery?: number;
}) => { destroy(cb: (err?: Error) => void): void };
type RedisEmitter = mqemitter.MQEmitter & {
  state: { on(event: 'error', listener: (err: Error) => void): void };
};
const mqemitterRedis = require('mqemitter-redis') as (opts: {
  subConn: Redis;
  pubConn: Redis;
  concurrency: number;
  matchEmptyLevels: boolean;
}) => RedisEmitter;

export interface ClusterConfig {
  redisUrl: string;
  connectTimeoutMs: number;
}

/** ioredis options: bounded connect, commands that fail instead of waiting for a dead Redis. */
export function redisOptions(config: ClusterConfig): RedisOptions {
  return {
    connectTimeout: config.connectTimeoutMs,
    maxRetriesPerRequest: 1,
    // Reconnect for ever, at most every 2 s: Redis coming back is picked up without a restart.
    retryStrategy: (times) => Math.min(times * 200, 2000),
    lazyConnect: true,
  };
}

export async function connectClusterStore(o: {
  config: ClusterConfig;
  logger: Logger;
  concurrency: number;
}) {
  const { config, logger } = o;
  const roles = ['pub', 'sub', 'store'] as const;
  const conns = roles.map((role) => {
    const conn = new Redis(config.redisUrl, { ...redisOptions(config), connectionName: role });
    // One line per outage, not one per reconnect attempt.
    let down = false;
    conn.on('error', (err: Error) => {
      if (down) return;
      down = true;
      logger.error({ err, redis: role }, 'Redis unreachable: clustered broker degraded');
    });
    conn.on('ready', () => {
      if (down) logger.warn({ redis: role }, 'Redis answers again');
      down = false;
    });
    return conn;
  });
  const [pubConn, subConn, storeConn] = conns as [Redis, Redis, Redis];
  const quitAll = (): void => {
    for (const c of conns) c.disconnect();
  };
  try {
    await Promise.all(conns.map((c) => c.connect()));
  } catch (err) {
    quitAll();
    throw new Error(
      `REDIS_URL: Redis did not answer within ${config.connectTimeoutMs} ms (${(err as Error).message})`,
      { cause: err },
    );
  }
  // Aedes' default emitter options [MQTT-4.7.1-3], on Redis.
  const mq = mqemitterRedis({
    subConn,
    pubConn,
    concurrency: o.concurrency,
    matchEmptyLevels: true,
  });
  mq.state.on('error', (err) => logger.debug({ err }, 'Redis pub/sub error'));
  const persistence = redisPersistence({ conn: storeConn, maxSessionDelivery: 1000 });

  return {
    mq,
    persistence,
    /** For the cluster-wide CONNECT budget (broker/shared-limits.ts). */
    redis: storeConn,
    /** Every connection to Redis is up (for /readyz). */
    healthy: (): boolean => conns.every((c) => c.status === 'ready'),
    /** After Aedes has closed (which quits the emitter's two connections). */
    async close(): Promise<void> {
      // Its unsubscribe goes through the emitter Aedes has closed: bounded, not awaited for ever.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1000);
        try {
          persistence.destroy(() => {
            clearTimeout(timer);
            resolve();
          });
        } catch {
          resolve();
        }
      });
      quitAll();
    },
  };
}

export type ClusterStore = Awaited<ReturnType<typeof connectClusterStore>>;
