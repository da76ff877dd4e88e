import pg from 'pg';
import type { Logger } from 'pino';
import { clusterRepo } from './cluster-repo.ts';

/**
 * One duty that exactly one node of a cluster performs (alert evaluation, the firmware rollout
 * timer), whatever the number of nodes sharing the database (ADR 0011). The holder is whoever
 * holds a session-level PostgreSQL advisory lock on a connection of its own: the lock lives as
 * long as that session, so a node that dies (SIGKILL, power cut) loses it as soon as the server
 * sees its connection close, and a follower trying every `checkMs` takes it over. A leader checks
 * its connection every `checkMs` as well and steps down the moment it fails (it cannot know
 * whether the server still holds its lock), so two leaders never act past one check interval;
 * the once-only writes behind each duty (unique open alert, conditional updates, SKIP LOCKED)
 * stay the last guard for that interval.
 */

/** The first key of every lease: ours, apart from anything else using advisory locks. */
const LEASE_NAMESPACE = 0x74_68_6d_6e; // "thmn"

/** The duties, each its own lock (the second key). Never renumber: nodes of two releases meet during an upgrade. */
export const leaseDuties = { alerts: 1, firmware: 2 } as const;
export type LeaseDuty = keyof typeof leaseDuties;

export interface LeaderLease {
  /** This node holds the lease right now. */
  isLeader(): boolean;
  /** Calls `listener` with true when this node becomes leader, false when it steps down. */
  onChange(listener: (leader: boolean) => void): void;
  close(): Promise<void>;
}

export function createLeaderLease(deps: {
  url: string;
  duty: LeaseDuty;
  logger: Logger;
  checkMs: number;
}): LeaderLease {
  const log = deps.logger.child({ lease: deps.duty });
  const listeners: ((leader: boolean) => void)[] = [];
  let client: pg.Client | undefined;
  let leader = false;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();

  const setLeader = (value: boolean): void => {
    if (leader === value) return;
    leader = value;
    log.info(
      value
        ? `this node is now the cluster leader for ${deps.duty}`
        : `this node stepped down as cluster leader for ${deps.duty}`,
    );
    for (const l of listeners) {
      try {
        l(value);
      } catch (err) {
        log.error({ err }, 'a leader lease listener failed');
      }
    }
  };

  const drop = async (): Promise<void> => {
    const c = client;
    client = undefined;
    setLeader(false);
    await c?.end().catch(() => undefined);
  };

  async function connect(): Promise<pg.Client> {
    const c = new pg.Client({
      connectionString: deps.url,
      application_name: `thamani-lease-${deps.duty}`,
      keepAlive: true,
      connectionTimeoutMillis: 10_000,
      // A check that hangs (a network cut) must fail, so that a leader steps down rather than waiting.
      query_timeout: Math.max(deps.checkMs * 2, 5000),
    });
    // Without a listener a lost connection would crash the process; the next check sees it.
    c.on('error', (err) => log.warn({ err }, 'leader lease connection failed'));
    c.once('end', () => {
      if (client === c) {
        client = undefined;
        setLeader(false);
      }
    });
    try {
      await c.connect();
    } catch (err) {
      await c.end().catch(() => undefined);
      throw err;
    }
    return c;
  }

  async function check(): Promise<void> {
    try {
      client ??= await connect();
      if (leader) {
        // Still ours as long as the session answers (the lock dies only with the session).
        await clusterRepo.ping(client);
      } else {
        const got = await clusterRepo.tryAdvisoryLock(
          client,
          LEASE_NAMESPACE,
          leaseDuties[deps.duty],
        );
        if (closed) return;
        if (got) setLeader(true);
      }
    } catch (err) {
      log.warn({ err, leader }, 'leader lease check failed; stepping down until it answers');
      await drop();
    }
  }

  const loop = (): void => {
    running = check().finally(() => {
      if (closed) return;
      timer = setTimeout(loop, deps.checkMs);
      timer.unref();
    });
  };
  loop();

  return {
    isLeader: () => leader,
    onChange(listener) {
      listeners.push(listener);
    },
    async close() {
      closed = true;
      clearTimeout(timer);
      await running;
      // Ending the session releases the lock at once: a follower need not wait for a timeout.
      await drop();
    },
  };
}
