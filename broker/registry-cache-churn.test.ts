import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ConnectionIdentity } from './identity-fns.ts';
import { createRegistryCache } from './registry-cache.ts';

/**
 * Registry churn on *other* devices (activations at first CONNECT, enrolments, revocations) must
 * not starve a CONNECT, and an event about *this* device must still win over an answer read
 * before it. Each registry query here is deferred: it reads the registry when it is issued (a
 * snapshot, as PostgreSQL does) and answers only when the generated schedule says so, so any
 * interleaving of lookups, answers and invalidations is tried.
 */
const serials = ['s0', 's1', 's2', 's3'];
/** s0 and s1 are two certificates of one device (a rotation overlap). */
const deviceOf: Record<string, string> = { s0: 'd0', s1: 'd0', s2: 'd1', s3: 'd2' };
/** The registry row's revision travels in unitId, so a test can tell an old answer from a new one. */
const row = (serial: string, rev: number): ConnectionIdentity => ({
  deviceId: deviceOf[serial]!,
  unitId: `rev-${rev}`,
  kind: 'biodigester',
  deviceStatus: 'active',
  certStatus: 'active',
  notAfter: new Date(Date.now() + 86_400_000),
});
const revOf = (identity: ConnectionIdentity | undefined): number =>
  identity ? Number(identity.unitId.slice(4)) : -1;

interface Pending {
  answer: Map<string, ConnectionIdentity>;
  resolve: (m: Map<string, ConnectionIdentity>) => void;
}
function deferredRegistry(read: (serial: string) => ConnectionIdentity | undefined) {
  const pending: Pending[] = [];
  return {
    pending,
    lookup: {
      connectionIdentities: (wanted: string[]) =>
        new Promise<Map<string, ConnectionIdentity>>((resolve) => {
          const answer = new Map<string, ConnectionIdentity>();
          for (const w of wanted) {
            const r = read(w);
            if (r) answer.set(w, r);
          }
          pending.push({ answer, resolve });
        }),
    },
    /** Answers the query at `index` (modulo the ones waiting), if any. */
    answer(index: number): void {
      if (pending.length === 0) return;
      const [p] = pending.splice(index % pending.length, 1);
      p!.resolve(p!.answer);
    },
  };
}
/** Lets the batch timer (0 ms) fire and every settled promise run on. */
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 1));

async function finish(
  registry: ReturnType<typeof deferredRegistry>,
  done: () => boolean,
): Promise<void> {
  for (let i = 0; !done() && i < 10_000; i++) {
    await settle();
    registry.answer(0);
  }
  await settle();
}

describe('registry cache under churn', () => {
  it('an invalidation of another serial or device never retries or refuses a lookup', async () => {
    // Lookups for s0 (device d0) and s2 (d1); the churn is everything else, including a new
    // serial per step (enrolments) and d2's status (its first CONNECT activating it).
    type Op =
      | { kind: 'get'; serial: string }
      | { kind: 'answer'; index: number }
      | { kind: 'churnSerial'; serial: string }
      | { kind: 'churnDevice'; deviceId: string };
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ kind: fc.constant('get' as const), serial: fc.constantFrom('s0', 's2') }),
      fc.record({ kind: fc.constant('answer' as const), index: fc.nat(8) }),
      fc.record({
        kind: fc.constant('churnSerial' as const),
        serial: fc.oneof(
          fc.constantFrom('s3'),
          fc.nat().map((n) => `e${n.toString(16)}`),
        ),
      }),
      fc.record({
        kind: fc.constant('churnDevice' as const),
        deviceId: fc.oneof(fc.constant('d2'), fc.uuid()),
      }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(op, { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 1, max: 4 }),
        async (ops, maxBatch) => {
          const registry = deferredRegistry((serial) => row(serial, 0));
          const cache = createRegistryCache({
            ttlMs: 0, // nothing kept: every get is a query, so every get is exposed to churn
            batchMs: 0,
            maxBatch,
            lookup: registry.lookup,
          });
          const outcomes: Promise<string>[] = [];
          let open = 0;
          for (const o of ops) {
            if (o.kind === 'get') {
              open++;
              outcomes.push(
                cache.get(o.serial).then(
                  (identity) => identity?.deviceId ?? 'unknown',
                  (err: unknown) => `refused: ${(err as Error).name}`,
                ),
              );
              void outcomes.at(-1)!.finally(() => open--);
            } else if (o.kind === 'answer') registry.answer(o.index);
            else if (o.kind === 'churnSerial') cache.invalidateSerial(o.serial);
            else cache.invalidateDevice(o.deviceId);
            await settle();
          }
          await finish(registry, () => open === 0);
          const got = await Promise.all(outcomes);
          expect(got.filter((g) => g.startsWith('refused'))).toEqual([]);
          expect(cache.counters.retried).toBe(0);
          // Memory: nothing in flight, so no invalidation mark is held any more.
          expect(cache.marksHeld()).toBe(0);
          cache.stop();
        },
      ),
      { numRuns: 300 },
    );
  });

  it('an answer read across an event about its serial, its device or a resync is neither returned nor kept', async () => {
    type Op =
      | { kind: 'get'; serial: string }
      | { kind: 'answer'; index: number }
      | { kind: 'revoke'; serial: string } // the event is heard at once
      | { kind: 'suspend'; deviceId: string }
      | { kind: 'silentChange'; serial: string } // its event is lost ...
      | { kind: 'resync' }; // ... and the resync makes up for it
    const op: fc.Arbitrary<Op> = fc.oneof(
      {
        weight: 4,
        arbitrary: fc.record({
          kind: fc.constant('get' as const),
          serial: fc.constantFrom(...serials),
        }),
      },
      {
        weight: 3,
        arbitrary: fc.record({ kind: fc.constant('answer' as const), index: fc.nat(8) }),
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
          deviceId: fc.constantFrom('d0', 'd1', 'd2'),
        }),
      },
      {
        weight: 1,
        arbitrary: fc.record({
          kind: fc.constant('silentChange' as const),
          serial: fc.constantFrom(...serials),
        }),
      },
      { weight: 1, arbitrary: fc.constant({ kind: 'resync' as const }) },
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(op, { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 1, max: 4 }),
        // A tiny mark budget forces the "distrust every lookup in flight" fallback too.
        fc.constantFrom(1, 2, 10_000),
        async (ops, maxBatch, maxMarks) => {
          const rev = new Map(serials.map((s) => [s, 0]));
          /** The newest revision per serial whose event the gateway has heard. */
          const heard = new Map(serials.map((s) => [s, 0]));
          const registry = deferredRegistry((serial) => row(serial, rev.get(serial)!));
          const cache = createRegistryCache({
            ttlMs: 3_600_000,
            batchMs: 0,
            maxBatch,
            maxMarks,
            lookup: registry.lookup,
          });
          const stale: string[] = [];
          const check = (serial: string) => (identity: ConnectionIdentity | undefined) => {
            if (revOf(identity) < heard.get(serial)!)
              stale.push(`${serial}: rev ${revOf(identity)} after hearing ${heard.get(serial)}`);
          };
          let open = 0;
          const change = (serial: string): number => {
            rev.set(serial, rev.get(serial)! + 1);
            return rev.get(serial)!;
          };
          for (const o of ops) {
            if (o.kind === 'get') {
              open++;
              void cache
                .get(o.serial)
                .then(check(o.serial), () => undefined) // a refusal is safe
                .finally(() => open--);
            } else if (o.kind === 'answer') registry.answer(o.index);
            else if (o.kind === 'revoke') {
              heard.set(o.serial, change(o.serial));
              cache.invalidateSerial(o.serial);
            } else if (o.kind === 'suspend') {
              for (const s of serials.filter((x) => deviceOf[x] === o.deviceId))
                heard.set(s, change(s));
              cache.invalidateDevice(o.deviceId);
            } else if (o.kind === 'silentChange') change(o.serial);
            else {
              for (const s of serials) heard.set(s, rev.get(s)!);
              cache.clear();
            }
            await settle();
          }
          await finish(registry, () => open === 0);
          // Kept answers: a get now is served from memory where one was kept; none may be older.
          for (const s of serials) {
            let done = false;
            void cache
              .get(s)
              .then(check(s))
              .finally(() => (done = true));
            await finish(registry, () => done);
          }
          expect(stale).toEqual([]);
          cache.stop();
        },
      ),
      { numRuns: 300 },
    );
  });
});
