import type pg from 'pg';
import type { Logger } from '../app/logger.ts';

/**
 * devices.online / last_seen_at. Connect and disconnect are written at once; "seen" from
 * publishes is coalesced and flushed every few seconds in one statement, so telemetry does not
 * pay a write per message.
 */
export function createPresence(deps: { pool: pg.Pool; logger: Logger; flushMs?: number; onChange?: (change: { deviceId: string; unitId: string; online: boolean; at: Date }) => void }) {
  const seen = new Set<string>();
  const flush = async (): Promise<void> => {
    if (seen.size === 0) return;
    const ids = [...seen];
    seen.clear();
    await deps.pool.query(`UPDATE devices SET last_seen_at = now() WHERE id = ANY($1::text[])`, [ids]);
  };
  const timer = setInterval(() => {
    flush().catch((err: unknown) => deps.logger.warn({ err }, 'presence flush failed'));
  }, deps.flushMs ?? 5000);
  timer.unref();

  const write = (deviceId: string, online: boolean): void => {
    deps.pool
      .query<{ unit_id: string; at: Date }>(`UPDATE devices SET online = $2, last_seen_at = now() WHERE id = $1 RETURNING unit_id, last_seen_at AS at`, [deviceId, online])
      .then((r) => {
        const row = r.rows[0];
        if (row) deps.onChange?.({ deviceId, unitId: row.unit_id, online, at: row.at });
      })
      .catch((err: unknown) => deps.logger.warn({ err }, 'presence update failed'));
  };

  return {
    /** One gateway owns the broker: whatever was online before this start is not any more. */
    async reset(): Promise<void> {
      await deps.pool.query(`UPDATE devices SET online = false WHERE online`);
    },
    connected(deviceId: string): void {
      write(deviceId, true);
    },
    disconnected(deviceId: string): void {
      seen.delete(deviceId);
      write(deviceId, false);
    },
    seen(deviceId: string): void {
      seen.add(deviceId);
    },
    async stop(): Promise<void> {
      clearInterval(timer);
      await flush();
    },
  };
}

export type Presence = ReturnType<typeof createPresence>;
