import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type pg from 'pg';
import type { Logger } from 'pino';
import { createPresenceRepo, type PresenceRow } from './presence-repo.ts';

/**
 * devices.online / last_seen_at. Connects and disconnects are gathered for `batchMs` (100 ms)
 * and written in one statement (presence-repo.ts), the latest state of each device winning: a
 * reconnect storm of 5,000 devices costs a few dozen statements, not 5,000 transactions. "Seen"
 * from publishes is coalesced and flushed every few seconds in one statement, so telemetry does
 * not pay a write per message. One write at a time, in order. A write that fails (the database
 * is down) is not lost: the next flush sets `online` of every device from the live sessions,
 * once the database answers again.
 *
 * Several nodes (ADR 0010): each device online is held by the node of its session (`node_id`).
 * Every node writes a heartbeat every `heartbeatMs` and sweeps: devices of a node whose heartbeat
 * is older than 3 heartbeats (it was SIGKILLed, its machine lost) are set offline by the nodes
 * still alive, within about 4 heartbeats (8 s by default: under 1.5 × the shortest keepalive the
 * gateway accepts, 10 s). The devices reconnect to a live node, which sets them online again.
 */
export function createPresence(deps: {
  pool: Pick<pg.Pool, 'query'>;
  logger: Logger;
  flushMs?: number;
  batchMs?: number;
  onChange?: (change: { deviceId: string; unitId: string; online: boolean; at: Date }) => void;
  /** Other nodes share the database (REDIS_URL set): a start must not set their devices offline. */
  clustered?: boolean;
  nodeId?: string;
  heartbeatMs?: number;
}) {
  const nodeId = deps.nodeId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const heartbeatMs = deps.heartbeatMs ?? 2000;
  const repo = createPresenceRepo(deps.pool, nodeId);
  const seen = new Set<string>();
  /** Devices with a live session, as the broker told us (the truth `online` must match). */
  const live = new Set<string>();
  /** Connects and disconnects not written yet: the latest state per device. */
  let changes = new Map<string, boolean>();
  let stale = false;
  let batchTimer: NodeJS.Timeout | undefined;
  /** The write in progress: writes run one after the other, so a later state is never overtaken. */
  let writing: Promise<void> = Promise.resolve();
  const emit = (rows: PresenceRow[]): void => {
    for (const row of rows)
      deps.onChange?.({ deviceId: row.id, unitId: row.unit_id, online: row.online, at: row.at });
  };

  const resync = async (): Promise<void> => {
    const ids = [...live];
    stale = false; // (a write failing meanwhile sets it again)
    changes.clear(); // what they would write, this writes too
    const rows = await repo.setLive(ids).catch((err: unknown) => {
      stale = true;
      throw err;
    });
    deps.logger.info(
      { changed: rows.length, online: ids.length },
      'presence written again after failed updates',
    );
    emit(rows);
  };
  const writeChanges = async (): Promise<void> => {
    if (changes.size === 0) return;
    const batch = changes;
    changes = new Map();
    try {
      emit(await repo.setOnline([...batch.keys()], [...batch.values()]));
    } catch (err) {
      stale = true;
      deps.logger.warn(
        { err, devices: batch.size },
        'presence update failed; written again once the database answers',
      );
    }
  };
  /** Runs `step` after the write in progress. */
  const serial = (step: () => Promise<void>): Promise<void> => {
    const next = writing.then(step);
    writing = next.catch(() => undefined);
    return next;
  };
  const flush = (): Promise<void> =>
    serial(async () => {
      if (stale) await resync();
      await writeChanges();
      if (seen.size === 0) return;
      const ids = [...seen];
      seen.clear();
      try {
        await repo.touch(ids);
      } catch (err) {
        for (const id of ids) if (live.has(id)) seen.add(id);
        throw err;
      }
    });
  const timer = setInterval(() => {
    flush().catch((err: unknown) => deps.logger.warn({ err }, 'presence flush failed'));
  }, deps.flushMs ?? 5000);
  timer.unref();

  const change = (deviceId: string, online: boolean): void => {
    changes.set(deviceId, online);
    batchTimer ??= setTimeout(() => {
      batchTimer = undefined;
      void serial(writeChanges);
    }, deps.batchMs ?? 100);
  };

  const beat = async (): Promise<void> => {
    await repo.heartbeat();
    const swept = await repo.sweep(3 * heartbeatMs);
    if (swept.length > 0)
      deps.logger.warn(
        { devices: swept.length },
        'devices of a gateway node that stopped answering set offline',
      );
    emit(swept);
  };
  let heartbeat: NodeJS.Timeout | undefined;

  return {
    nodeId,
    /**
     * At start: this node announces itself; alone, whatever was online before is not any more;
     * clustered, only devices of nodes that stopped answering are set offline.
     */
    async reset(): Promise<void> {
      await repo.heartbeat();
      if (deps.clustered) await beat();
      else await repo.allOffline();
      heartbeat = setInterval(() => {
        beat().catch((err: unknown) => deps.logger.warn({ err }, 'presence heartbeat failed'));
      }, heartbeatMs);
      heartbeat.unref();
    },
    connected(deviceId: string): void {
      live.add(deviceId);
      change(deviceId, true);
    },
    disconnected(deviceId: string): void {
      live.delete(deviceId);
      seen.delete(deviceId);
      change(deviceId, false);
    },
    seen(deviceId: string): void {
      seen.add(deviceId);
    },
    /** Writes what is pending now (the batch timer's work). */
    flush,
    async stop(): Promise<void> {
      clearInterval(timer);
      clearInterval(heartbeat);
      clearTimeout(batchTimer);
      batchTimer = undefined;
      await flush();
      // (Only a node that announced itself in reset() has a row to remove.)
      if (heartbeat)
        await repo
          .leave()
          .catch((err: unknown) =>
            deps.logger.warn({ err }, 'could not remove this node from gateway_nodes'),
          );
    },
  };
}

export type Presence = ReturnType<typeof createPresence>;
