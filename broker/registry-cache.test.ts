import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ConnectionIdentity } from './identity-fns.ts';
import { createRegistryCache } from './registry-cache.ts';
import { stillValid } from './revalidation.ts';

/**
 * The cache's promise: once the gateway has heard of a revocation or a status change, no lookup
 * answers with the state before it, whatever the order in which queries, answers and events
 * arrive. The registry here is a plain map; each query reads it when it *starts* (a snapshot, as
 * PostgreSQL does) and answers when the scheduler says, so answers can overtake events.
 */
const serials = ['a1', 'b2', 'c3'];
const deviceOf = (serial: string): string => `dev-${serial}`;
const active = (serial: string): ConnectionIdentity => ({
  deviceId: deviceOf(serial),
  unitId: 'u',
  kind: 'biodigester',
  deviceStatus: 'active',
  certStatus: 'active',
  notAfter: new Date(Date.now() + 86_400_000),
});

type Op =
  | { kind: 'get'; serial: string }
  | { kind: 'revoke'; serial: string }
  | { kind: 'suspend'; serial: string }
  | { kind: 'resync' };
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('get' as const),
      serial: fc.constantFrom(...serials),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('revoke' as const),
      serial: fc.constantFrom(...serials),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('suspend' as const),
      serial: fc.constantFrom(...serials),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'resync' as const }) },
);

/** Runs the scheduler until every check has settled (queries are issued from a timer, so later than the ops). */
async function drain(s: fc.Scheduler, checks: Promise<void>[]): Promise<void> {
  let settled = 0;
  const all = Promise.all(checks.map((c) => c.finally(() => settled++)));
  while (settled < checks.length) {
    await new Promise((r) => setTimeout(r, 0));
    if (s.count() > 0) await s.waitOne();
  }
  await all;
}

describe('registry cache', () => {
  it('never answers a lookup with a certificate or device state older than an event the gateway has heard', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        fc.array(op, { minLength: 1, maxLength: 25 }),
        fc.integer({ min: 1, max: 4 }),
        async (s, ops, maxBatch) => {
          const registry = new Map(serials.map((x) => [x, active(x)]));
          /** Serials whose revocation or suspension the gateway has been told of (event delivered). */
          const heard = new Set<string>();
          const cache = createRegistryCache({
            ttlMs: 60_000,
            batchMs: 0,
            maxBatch,
            lookup: {
              connectionIdentities: (wanted) => {
                const snapshot = new Map(
                  wanted.flatMap((w) =>
                    registry.has(w) ? [[w, { ...registry.get(w)! }] as const] : [],
                  ),
                );
                return s.schedule(Promise.resolve(snapshot), `query ${wanted.join(',')}`);
              },
            },
          });
          const checks: Promise<void>[] = [];
          for (const o of ops) {
            if (o.kind === 'get') {
              // What the gateway had heard when this CONNECT's lookup began: the answer may not be older.
              const before = new Set(heard);
              checks.push(
                cache.get(o.serial).then(
                  (identity) => {
                    if (before.has(o.serial)) expect(stillValid(identity, Date.now())).toBe(false);
                  },
                  (err: unknown) => expect((err as Error).name).toBe('RegistryChanging'), // refused (CONNACK 3): safe
                ),
              );
            } else if (o.kind === 'revoke' || o.kind === 'suspend') {
              // The registry changes (commit), then the event reaches the gateway, at a moment the scheduler picks.
              const serial = o.serial;
              const current = registry.get(serial)!;
              registry.set(
                serial,
                o.kind === 'revoke'
                  ? { ...current, certStatus: 'revoked' }
                  : { ...current, deviceStatus: 'suspended' },
              );
              checks.push(
                s.schedule(Promise.resolve(), `event ${o.kind} ${serial}`).then(() => {
                  if (o.kind === 'revoke') cache.invalidateSerial(serial);
                  else cache.invalidateDevice(deviceOf(serial));
                  heard.add(serial);
                }),
              );
            } else {
              checks.push(s.schedule(Promise.resolve(), 'resync').then(() => cache.clear()));
            }
          }
          await drain(s, checks);
          // And afterwards: every changed serial is refused, none is served from an older answer.
          for (const serial of heard) {
            const later = cache
              .get(serial)
              .then((identity) => expect(stillValid(identity, Date.now())).toBe(false));
            await drain(s, [later]);
          }
          cache.stop();
        },
      ),
      { numRuns: 300 },
    );
  });

  it('gathers lookups that arrive together into one query, and answers a repeat from memory', async () => {
    const queries: string[][] = [];
    const cache = createRegistryCache({
      ttlMs: 60_000,
      batchMs: 5,
      lookup: {
        connectionIdentities: (wanted) => {
          queries.push(wanted);
          return Promise.resolve(new Map(wanted.map((w) => [w, active(w)])));
        },
      },
    });
    const answers = await Promise.all(serials.map((x) => cache.get(x)));
    expect(answers.map((a) => a?.deviceId)).toEqual(serials.map(deviceOf));
    expect(queries).toEqual([serials]);
    await cache.get('a1');
    expect(queries).toHaveLength(1);
    cache.invalidateSerial('a1');
    await cache.get('a1');
    expect(queries).toEqual([serials, ['a1']]);
  });
});
