import type { ConnectionIdentity } from './identity-fns.ts';

/**
 * The registry as the gateway reads it at CONNECT: what a certificate serial says (device,
 * status, certificate status). Two costs are taken off a CONNECT here:
 *
 * - lookups that arrive together (a reconnect storm: thousands of CONNECTs within seconds) are
 *   gathered for `batchMs` and read in one query (`serial = ANY($1)`), not one each;
 * - an answer is kept for `ttlMs` (the revalidation interval), so a device that reconnects
 *   (a flaky link) costs no query.
 *
 * Kept answers never outlive what the registry pushes (devices/device-events.ts): a revocation
 * drops the serial, a status change drops the device, a resync (the event connection was lost,
 * notifications may be missed) drops everything. And an answer read *while* such an event
 * arrived may predate it: it is neither kept nor used, the lookup is made again. So once the
 * gateway has heard of a revocation or suspension, no CONNECT is admitted on an older answer.
 *
 * Only an event about *that* answer makes it suspect: its serial, its device, or a resync. A
 * single counter bumped by every event (as before) let churn on other devices (each first
 * CONNECT activates its device: a status event) retry and finally refuse valid devices with
 * `registry_unavailable` during an enrolment or reconnect storm. Each invalidation leaves a mark
 * (serial or device -> sequence number); marks older than every lookup still in flight can no
 * longer matter and are dropped, and past `maxMarks` they collapse into one "distrust every
 * lookup in flight" mark, which is safe (a retry) and keeps memory bounded.
 * Expiry (notAfter) is checked at every CONNECT by decideConnect from the kept value.
 */
export interface RegistryLookup {
  connectionIdentities(serials: string[]): Promise<Map<string, ConnectionIdentity>>;
}

export class RegistryChanging extends Error {
  constructor() {
    super('the registry kept changing during the lookup');
    this.name = 'RegistryChanging';
  }
}

interface Entry {
  identity: ConnectionIdentity;
  expires: number;
}

export function createRegistryCache(deps: {
  lookup: RegistryLookup;
  ttlMs: number;
  batchMs?: number;
  maxEntries?: number;
  maxBatch?: number;
  /** Invalidation marks kept while lookups are in flight; past it every lookup in flight is distrusted. */
  maxMarks?: number;
  now?: () => number;
}) {
  const now = deps.now ?? Date.now;
  const maxEntries = deps.maxEntries ?? 50_000;
  const maxBatch = deps.maxBatch ?? 1000;
  const maxMarks = deps.maxMarks ?? 10_000;
  const maxAttempts = 5;
  const entries = new Map<string, Entry>();
  /** Sequence number of the latest invalidation. */
  let seq = 0;
  /** Lookups in flight by the `seq` they started at (insertion order = ascending: the first is the oldest). */
  const inFlight = new Map<number, number>();
  /**
   * What changed while lookups were in flight: key -> `seq` of its latest invalidation, in
   * ascending `seq` order (a re-marked key is moved to the end), so pruning walks from the front.
   */
  const marks = new Map<string, number>();
  /** The latest resync (or collapsed marks): every lookup that started before it is distrusted. */
  let allChangedAt = 0;
  let queue = new Map<
    string,
    { resolve: (v: ConnectionIdentity | undefined) => void; reject: (e: unknown) => void }[]
  >();
  let timer: NodeJS.Timeout | undefined;
  const counters = { hits: 0, misses: 0, queries: 0, retried: 0 };

  const serialKey = (serial: string): string => `s:${serial}`;
  const deviceKey = (deviceId: string): string => `d:${deviceId}`;
  const mark = (key: string): void => {
    seq++;
    // No lookup in flight: nothing read before this event can still be answered.
    if (inFlight.size === 0) return;
    if (marks.size >= maxMarks) {
      marks.clear();
      allChangedAt = seq;
      return;
    }
    marks.delete(key);
    marks.set(key, seq);
  };
  const begin = (): number => {
    inFlight.set(seq, (inFlight.get(seq) ?? 0) + 1);
    return seq;
  };
  const end = (started: number): void => {
    const left = inFlight.get(started)! - 1;
    if (left > 0) inFlight.set(started, left);
    else inFlight.delete(started);
    // A mark at or before the oldest lookup in flight cannot concern it (it was there before it began).
    const oldest = inFlight.keys().next();
    if (oldest.done) {
      marks.clear();
      return;
    }
    for (const [key, at] of marks) {
      if (at > oldest.value) break;
      marks.delete(key);
    }
  };
  /** Whether an answer read since `started` may predate an event about it. */
  const suspect = (started: number, serial: string, identity?: ConnectionIdentity): boolean =>
    allChangedAt > started ||
    (marks.get(serialKey(serial)) ?? 0) > started ||
    (identity !== undefined && (marks.get(deviceKey(identity.deviceId)) ?? 0) > started);

  const run = (): void => {
    timer = undefined;
    const batch = queue;
    queue = new Map();
    const serials = [...batch.keys()];
    counters.queries++;
    deps.lookup.connectionIdentities(serials).then(
      (found) => {
        for (const [serial, waiters] of batch)
          for (const w of waiters) w.resolve(found.get(serial));
      },
      (err: unknown) => {
        for (const waiters of batch.values()) for (const w of waiters) w.reject(err);
      },
    );
  };
  const load = (serial: string): Promise<ConnectionIdentity | undefined> =>
    new Promise((resolve, reject) => {
      const waiters = queue.get(serial);
      if (waiters) waiters.push({ resolve, reject });
      else queue.set(serial, [{ resolve, reject }]);
      if (queue.size >= maxBatch) {
        clearTimeout(timer);
        run();
      } else timer ??= setTimeout(run, deps.batchMs ?? 5);
    });

  return {
    counters,
    size: (): number => entries.size,
    /** Invalidation marks held (bounded by `maxMarks`; 0 when no lookup is in flight). */
    marksHeld: (): number => marks.size,
    async get(serial: string): Promise<ConnectionIdentity | undefined> {
      const hit = entries.get(serial);
      if (hit && hit.expires > now()) {
        counters.hits++;
        return hit.identity;
      }
      counters.misses++;
      for (let attempt = 0; attempt < maxAttempts; attempt++) {
        const started = begin();
        let identity: ConnectionIdentity | undefined;
        try {
          identity = await load(serial);
          if (suspect(started, serial, identity)) {
            counters.retried++;
            continue;
          }
        } finally {
          end(started);
        }
        if (identity) {
          if (entries.size >= maxEntries) entries.delete(entries.keys().next().value!);
          entries.set(serial, { identity, expires: now() + deps.ttlMs });
        }
        return identity;
      }
      throw new RegistryChanging();
    },
    invalidateSerial(serial: string): void {
      mark(serialKey(serial));
      entries.delete(serial);
    },
    invalidateDevice(deviceId: string): void {
      mark(deviceKey(deviceId));
      for (const [serial, e] of entries)
        if (e.identity.deviceId === deviceId) entries.delete(serial);
    },
    clear(): void {
      seq++;
      if (inFlight.size > 0) allChangedAt = seq;
      marks.clear();
      entries.clear();
    },
    stop(): void {
      clearTimeout(timer);
      if (queue.size > 0) run();
    },
  };
}

export type RegistryCache = ReturnType<typeof createRegistryCache>;
