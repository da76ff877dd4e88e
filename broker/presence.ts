import type pg from 'pg';
import type { Logger } from 'pino';

/**
 * devices.online / last_seen_at. Connect and disconnect are written at once; "seen" from
 * publishes is coalesced and flushed every few seconds in one statement, so telemetry does not
 * pay a write per message. A write that fails (the database is down) is not lost: the next flush
 * sets `online` of every device from the live sessions, once the database answers again.
 */
export function createPresence(deps: { pool: pg.Pool; logger: Logger; flushMs?: number; onChange?: (change: { deviceId: string; unitId: string; online: boolean; at: Date }) => void }) {
  const seen = new Set<string>();
  /** Devices with a live session, as the broker told us (the truth `online` must match). */
  const live = new Set<string>();
  let stale = false;
  const resync = async (): Promise<void> => {
    const ids = [...live];
    stale = false; // (a write failing meanwhile sets it again)
    const r = await deps.pool
      .query<{ id: string; unit_id: string; online: boolean; at: Date }>(
        `UPDATE devices SET online = (id = ANY($1::text[])), last_seen_at = CASE WHEN id = ANY($1::text[]) THEN now() ELSE last_seen_at END
          WHERE online IS DISTINCT FROM (id = ANY($1::text[])) RETURNING id, unit_id, online, last_seen_at AS at`,
        [ids],
      )
      .catch((err: unknown) => {
        stale = true;
        throw err;
      });
    deps.logger.info({ changed: r.rowCount, online: ids.length }, 'presence written again after failed updates');
    for (const row of r.rows) deps.onChange?.({ deviceId: row.id, unitId: row.unit_id, online: row.online, at: row.at });
  };
  const flush = async (): Promise<void> => {
    if (stale) await resync();
    if (seen.size === 0) return;
    const ids = [...seen];
    seen.clear();
    try {
      await deps.pool.query(`UPDATE devices SET last_seen_at = now() WHERE id = ANY($1::text[])`, [ids]);
    } catch (err) {
      for (const id of ids) if (live.has(id)) seen.add(id);
      throw err;
    }
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
      .catch((err: unknown) => {
        stale = true;
        deps.logger.warn({ err, deviceId, online }, 'presence update failed; written again once the database answers');
      });
  };

  return {
    /** One gateway owns the broker: whatever was online before this start is not any more. */
    async reset(): Promise<void> {
      await deps.pool.query(`UPDATE devices SET online = false WHERE online`);
    },
    connected(deviceId: string): void {
      live.add(deviceId);
      write(deviceId, true);
    },
    disconnected(deviceId: string): void {
      live.delete(deviceId);
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
