import type pg from 'pg';

/** A device whose `online` the statement changed, and when. */
export interface PresenceRow {
  id: string;
  unit_id: string;
  online: boolean;
  at: Date;
}

/**
 * devices.online / node_id / last_seen_at, and gateway_nodes: the only SQL presence runs, each a
 * single statement over many devices. A device online is held by one node (`node_id`); a node
 * writes "offline" only for a device it holds, so that after a takeover across nodes
 * [MQTT-3.1.4-2] the old node's late disconnect never overwrites the new node's connect.
 */
export function createPresenceRepo(pool: Pick<pg.Pool, 'query'>, nodeId: string) {
  return {
    /** Several devices' online state at once (a batch of connects and disconnects); the rows written. */
    async setOnline(ids: string[], online: boolean[]): Promise<PresenceRow[]> {
      const r = await pool.query<PresenceRow>(
        `UPDATE devices d SET online = v.online, node_id = CASE WHEN v.online THEN $3 END, last_seen_at = now()
           FROM unnest($1::text[], $2::boolean[]) AS v(id, online)
          WHERE d.id = v.id AND (v.online OR d.node_id = $3 OR d.node_id IS NULL)
          RETURNING d.id, d.unit_id, d.online, d.last_seen_at AS at`,
        [ids, online, nodeId],
      );
      return r.rows;
    },
    /** `online` of this node's devices set from its live sessions; the rows that changed. */
    async setLive(ids: string[]): Promise<PresenceRow[]> {
      const r = await pool.query<PresenceRow>(
        `UPDATE devices SET online = (id = ANY($1::text[])),
                node_id = CASE WHEN id = ANY($1::text[]) THEN $2 END,
                last_seen_at = CASE WHEN id = ANY($1::text[]) THEN now() ELSE last_seen_at END
          WHERE (id = ANY($1::text[]) AND (NOT online OR node_id IS DISTINCT FROM $2))
             OR (NOT id = ANY($1::text[]) AND online AND (node_id = $2 OR node_id IS NULL))
          RETURNING id, unit_id, online, last_seen_at AS at`,
        [ids, nodeId],
      );
      return r.rows;
    },
    async touch(ids: string[]): Promise<void> {
      await pool.query(`UPDATE devices SET last_seen_at = now() WHERE id = ANY($1::text[])`, [ids]);
    },
    /** One node alone (no cluster): whatever was online before this start is not any more. */
    async allOffline(): Promise<void> {
      await pool.query(`UPDATE devices SET online = false, node_id = NULL WHERE online`);
    },
    /** This node is alive (started now or still running). */
    async heartbeat(): Promise<void> {
      await pool.query(
        `INSERT INTO gateway_nodes (id) VALUES ($1)
         ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()`,
        [nodeId],
      );
    },
    /**
     * Devices held by no live node (its heartbeat older than `staleMs`, or gone) set offline, and
     * dead nodes forgotten; the device rows that changed.
     */
    async sweep(staleMs: number): Promise<PresenceRow[]> {
      const r = await pool.query<PresenceRow>(
        `WITH live AS (SELECT id FROM gateway_nodes
                        WHERE heartbeat_at >= now() - make_interval(secs => $1::double precision / 1000)),
              gone AS (DELETE FROM gateway_nodes WHERE id NOT IN (SELECT id FROM live))
         UPDATE devices SET online = false, node_id = NULL
          WHERE online AND (node_id IS NULL OR node_id NOT IN (SELECT id FROM live))
          RETURNING id, unit_id, online, now() AS at`,
        [staleMs],
      );
      return r.rows;
    },
    /** This node stops: its row goes (its devices were set offline by its last flush). */
    async leave(): Promise<void> {
      await pool.query(`DELETE FROM gateway_nodes WHERE id = $1`, [nodeId]);
    },
  };
}

export type PresenceRepo = ReturnType<typeof createPresenceRepo>;
