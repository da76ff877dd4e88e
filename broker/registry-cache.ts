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
  now?: () => number;
}) {
  const now = deps.now ?? Date.now;
  const maxEntries = deps.maxEntries ?? 50_000;
  const maxBatch = deps.maxBatch ?? 1000;
  const entries = new Map<string, Entry>();
  /** Bumped by every invalidation: an answer read across a bump is not trusted. */
  let epoch = 0;
  let queue = new Map<
    string,
    { resolve: (v: ConnectionIdentity | undefined) => void; reject: (e: unknown) => void }[]
  >();
  let timer: NodeJS.Timeout | undefined;
  const counters = { hits: 0, misses: 0, queries: 0, retried: 0 };

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
    async get(serial: string): Promise<ConnectionIdentity | undefined> {
      const hit = entries.get(serial);
      if (hit && hit.expires > now()) {
        counters.hits++;
        return hit.identity;
      }
      counters.misses++;
      for (let attempt = 0; attempt < 5; attempt++) {
        const seen = epoch;
        const identity = await load(serial);
        if (epoch !== seen) {
          counters.retried++;
          continue;
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
      epoch++;
      entries.delete(serial);
    },
    invalidateDevice(deviceId: string): void {
      epoch++;
      for (const [serial, e] of entries)
        if (e.identity.deviceId === deviceId) entries.delete(serial);
    },
    clear(): void {
      epoch++;
      entries.clear();
    },
    stop(): void {
      clearTimeout(timer);
      if (queue.size > 0) run();
    },
  };
}

export type RegistryCache = ReturnType<typeof createRegistryCache>;
