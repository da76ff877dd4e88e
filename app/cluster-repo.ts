import type { Queryable } from '../db/timeseries.ts';

/** The SQL of cluster coordination (ADR 0011): advisory-lock leases, the LISTEN/NOTIFY bus, the read pool's check. */
export const clusterRepo = {
  /** Session-level: held until released or the session ends (a dead node's ends with it). */
  async tryAdvisoryLock(q: Queryable, namespace: number, key: number): Promise<boolean> {
    const r = await q.query<{ got: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS got', [
      namespace,
      key,
    ]);
    return r.rows[0]?.got === true;
  },

  /** The session still answers (a lease holder's check). */
  async ping(q: Queryable): Promise<void> {
    await q.query('SELECT 1');
  },

  /** A hot standby (streaming replica) answers true. */
  async inRecovery(q: Queryable): Promise<boolean> {
    const r = await q.query<{ standby: boolean }>('SELECT pg_is_in_recovery() AS standby');
    return r.rows[0]?.standby === true;
  },

  async listen(q: Queryable, channel: string): Promise<void> {
    // LISTEN takes an identifier, not a parameter: channel is a constant of cluster-bus.ts.
    await q.query(`LISTEN ${channel}`);
  },

  /** Delivered to the sessions listening at once, or, sent in a transaction, at its commit. */
  async notify(q: Queryable, channel: string, payload: string): Promise<void> {
    await q.query('SELECT pg_notify($1, $2)', [channel, payload]);
  },
};
