import type pg from 'pg';

/** A device whose `online` the statement changed, and when. */
export interface PresenceRow {
  id: string;
  unit_id: string;
  online: boolean;
  at: Date;
}

/** devices.online / last_seen_at: the only SQL presence runs, each a single statement over many devices. */
export function createPresenceRepo(pool: Pick<pg.Pool, 'query'>) {
  return {
    /** Several devices' online state at once (a batch of connects and disconnects); the rows written. */
    async setOnline(ids: string[], online: boolean[]): Promise<PresenceRow[]> {
      const r = await pool.query<PresenceRow>(
        `UPDATE devices d SET online = v.online, last_seen_at = now()
           FROM unnest($1::text[], $2::boolean[]) AS v(id, online)
          WHERE d.id = v.id
          RETURNING d.id, d.unit_id, d.online, d.last_seen_at AS at`,
        [ids, online],
      );
      return r.rows;
    },
    /** `online` of every device set from the live sessions; the rows that changed. */
    async setLive(ids: string[]): Promise<PresenceRow[]> {
      const r = await pool.query<PresenceRow>(
        `UPDATE devices SET online = (id = ANY($1::text[])), last_seen_at = CASE WHEN id = ANY($1::text[]) THEN now() ELSE last_seen_at END
          WHERE online IS DISTINCT FROM (id = ANY($1::text[])) RETURNING id, unit_id, online, last_seen_at AS at`,
        [ids],
      );
      return r.rows;
    },
    async touch(ids: string[]): Promise<void> {
      await pool.query(`UPDATE devices SET last_seen_at = now() WHERE id = ANY($1::text[])`, [ids]);
    },
    async allOffline(): Promise<void> {
      await pool.query(`UPDATE devices SET online = false WHERE online`);
    },
  };
}

export type PresenceRepo = ReturnType<typeof createPresenceRepo>;
