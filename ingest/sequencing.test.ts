import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import type { DeviceSession } from '../broker/types.ts';
import { createTestDatabase, testLogger, type TestDatabase } from '../test/db.ts';
import { testIngestConfig } from '../test/broker-fixture.ts';
import { createIngest, type Ingest } from './ingest-service.ts';

/**
 * Every reading a device sends ends in exactly one outcome (stored, duplicate, or quarantined
 * with a reason), whatever the order it arrives in and however it is grouped into commits; and
 * the counters say what the database holds. Generated over the real batch writer and a real
 * PostgreSQL: sequences of (seq, ts, values) per device with re-sends, late arrivals, readings
 * sharing an instant (a coarse clock), seq that go back or jump, in batches.
 */

let t: TestDatabase;
const unitId = randomUUID();
beforeAll(async () => {
  t = await createTestDatabase();
});

interface Reading {
  seq: number;
  ts: number;
  v: number;
}
interface Message {
  device: number;
  readings: Reading[];
}

const session = (deviceId: string): DeviceSession => ({
  deviceId,
  unitId,
  kind: 'biodigester',
  certSerial: '01',
  certFingerprint: 'ff',
  clientId: deviceId,
  remoteAddress: undefined,
});
const payload = (m: Message): Buffer =>
  Buffer.from(
    JSON.stringify({
      batch: m.readings.map((r) => ({
        seq: r.seq,
        ts: new Date(r.ts).toISOString(),
        readings: { ph: r.v },
      })),
    }),
  );

let run = 0;

/**
 * Submits the messages in waves: each wave's messages are handed to ingest at once, in order
 * (their commits overlap), and the next wave waits for them.
 */
async function deliver(ingest: Ingest, prefix: string, messages: Message[], waves: number[]) {
  const totals = {
    stored: 0,
    duplicates: 0,
    regressions: 0,
    conflicts: 0,
    jumps: 0,
    other: 0,
    quarantineIds: [] as number[],
  };
  let at = 0;
  let w = 0;
  while (at < messages.length) {
    const n = Math.max(1, waves[w++ % waves.length]!);
    const wave = messages.slice(at, at + n);
    at += n;
    const outcomes = await Promise.all(
      wave.map((m) =>
        ingest.ingest(
          session(`${prefix}-${m.device}`),
          `devices/${prefix}-${m.device}/telemetry`,
          payload(m),
          new Date(),
        ),
      ),
    );
    for (const o of outcomes) {
      totals.stored += o.stored;
      totals.duplicates += o.duplicates;
      totals.regressions += o.regressions;
      totals.conflicts += o.conflicts;
      totals.quarantineIds.push(...o.quarantineIds);
      for (const b of o.reasons)
        for (const r of b.reasons)
          if (r.code === 'SEQ_JUMP') totals.jumps++;
          else totals.other++;
    }
  }
  return totals;
}

async function database(prefix: string) {
  const { rows } = await t.database.pool.query<{
    device_id: string;
    seq: string;
    ts: Date;
    ph: number;
  }>(`SELECT device_id, seq, ts, ph FROM readings WHERE device_id LIKE $1`, [`${prefix}-%`]);
  const q = await t.database.pool.query<{
    device_id: string;
    seq: string | null;
    reasons: { code: string }[];
    payload: Buffer;
  }>(`SELECT device_id, seq, reasons, payload FROM quarantine WHERE device_id LIKE $1`, [
    `${prefix}-%`,
  ]);
  return { rows, quarantine: q.rows };
}

function newIngest(batchMaxRows: number, maxSeqJump = 1_000_000) {
  // ingest() (not the MQTT handler) never tells the device: nothing is published.
  return createIngest({
    pool: t.database.pool,
    logger: testLogger,
    config: { ...testIngestConfig, batchMaxRows, batchMaxWaitMs: 1, maxSeqJump },
    publisher: { publish: () => Promise.resolve() },
  });
}

/** Messages of consecutive readings (1-5 each), per device, interleaved across devices. */
const toMessages = (perDevice: Reading[][], sizes: number[]): Message[] => {
  const queues = perDevice.map((readings, device) => {
    const out: Message[] = [];
    for (let i = 0, k = 0; i < readings.length; k++) {
      const n = 1 + (sizes[k % sizes.length]! % 5);
      out.push({ device, readings: readings.slice(i, i + n) });
      i += n;
    }
    return out;
  });
  const all: Message[] = [];
  for (let i = 0; queues.some((q) => i < q.length); i++)
    for (const q of queues) if (i < q.length) all.push(q[i]!);
  return all;
};

/** The delivery: some messages sent again later (a lost PUBACK), some swapped with the next (handled out of order). */
function disorder(messages: Message[], resend: number[], swaps: number[]): Message[] {
  const out = [...messages];
  for (const r of resend) {
    const i = r % out.length;
    out.splice(Math.min(out.length, i + 1 + (r % 7)), 0, out[i]!);
  }
  for (const s of swaps) {
    if (out.length < 2) break;
    const i = s % (out.length - 1);
    [out[i], out[i + 1]] = [out[i + 1]!, out[i]!];
  }
  return out;
}

const base = Date.now() - 3_600_000;
/** 40 runs with a fixed seed in `npm test`; `npm run fuzz -- --runs N [--seed S]` runs N/5 of each. */
const runs = process.env.FUZZ_RUNS
  ? Math.max(40, Math.round(Number(process.env.FUZZ_RUNS) / 5))
  : 40;
const seed = Number(process.env.FUZZ_SEED ?? 16_4);

describe('sequencing (generated)', () => {
  it(
    'stores every reading sent in order, whatever the re-sends, late arrivals and commit grouping: no quarantine, and the counters equal the rows',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.array(fc.integer({ min: 0, max: 140 }), { minLength: 1, maxLength: 25 }), {
            minLength: 1,
            maxLength: 3,
          }),
          fc.array(fc.nat(), { minLength: 1, maxLength: 5 }),
          fc.array(fc.nat(), { maxLength: 6 }),
          fc.array(fc.nat(), { maxLength: 6 }),
          fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 4 }),
          fc.integer({ min: 1, max: 30 }),
          async (values, sizes, resend, swaps, waves, batchMaxRows) => {
            const prefix = `bd-prop-order-${run++}`;
            // Strictly increasing seq and ts together (gaps allowed), values as they come.
            const perDevice = values.map((vs) =>
              vs.map((v, i) => ({ seq: 10 + i * 3, ts: base + i * 1000 + (v % 3), v: v / 10 })),
            );
            const messages = disorder(toMessages(perDevice, sizes), resend, swaps);
            const ingest = newIngest(batchMaxRows);
            const before = { ...ingest.counters };
            const totals = await deliver(ingest, prefix, messages, waves);
            await ingest.stop();
            const db = await database(prefix);
            const distinct = perDevice.reduce((n, r) => n + r.length, 0);
            const submitted = messages.reduce((n, m) => n + m.readings.length, 0);
            expect(db.quarantine.map((q) => q.reasons[0]!.code)).toEqual([]);
            expect(db.rows.length).toBe(distinct);
            expect(totals).toMatchObject({
              stored: distinct,
              duplicates: submitted - distinct,
              regressions: 0,
              conflicts: 0,
              jumps: 0,
            });
            expect(ingest.counters.accepted - before.accepted).toBe(db.rows.length);
            expect(ingest.counters.duplicates - before.duplicates).toBe(submitted - distinct);
          },
        ),
        { numRuns: runs, seed },
      );
    },
    Math.max(240_000, runs * 6_000),
  );

  it(
    'accounts for every reading exactly once with any seq and ts (same instants, regressions, jumps, re-sends): stored + duplicates + quarantined = sent, counters = rows',
    async () => {
      const reading = fc.record({
        dSeq: fc.integer({ min: -3, max: 4 }),
        dTs: fc.integer({ min: -1, max: 2 }),
        v: fc.integer({ min: 0, max: 3 }),
        jump: fc.boolean(),
      });
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.array(reading, { minLength: 1, maxLength: 25 }), {
            minLength: 1,
            maxLength: 3,
          }),
          fc.array(fc.nat(), { minLength: 1, maxLength: 5 }),
          fc.array(fc.nat(), { maxLength: 6 }),
          fc.array(fc.nat(), { maxLength: 6 }),
          fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 4 }),
          fc.integer({ min: 1, max: 30 }),
          async (steps, sizes, resend, swaps, waves, batchMaxRows) => {
            const prefix = `bd-prop-any-${run++}`;
            if (process.env.DEBUG_PROP)
              console.log(
                'run',
                prefix,
                JSON.stringify([steps, sizes, resend, swaps, waves, batchMaxRows]),
              );
            // A random walk: seq may stall or go back, ts may repeat (a coarse clock) or go back,
            // and now and then a seq far beyond the bound.
            const perDevice = steps.map((ss) => {
              let seq = 100;
              let ts = 0;
              return ss.map((s) => {
                seq = Math.max(0, seq + s.dSeq);
                ts = Math.max(0, ts + s.dTs);
                return {
                  seq: s.jump && s.v === 3 ? seq + 5000 : seq,
                  ts: base + ts * 1000,
                  v: s.v,
                };
              });
            });
            const messages = disorder(toMessages(perDevice, sizes), resend, swaps);
            const ingest = newIngest(batchMaxRows, 1000);
            const before = { ...ingest.counters, rejected: { ...ingest.counters.rejected } };
            const totals = await deliver(ingest, prefix, messages, waves);
            await ingest.stop();
            const db = await database(prefix);
            const submitted = messages.reduce((n, m) => n + m.readings.length, 0);
            // Exactly one outcome per reading sent.
            expect(totals.other).toBe(0);
            expect(
              totals.stored +
                totals.duplicates +
                totals.regressions +
                totals.conflicts +
                totals.jumps,
            ).toBe(submitted);
            // What the results say is what the database holds.
            expect(db.rows.length).toBe(totals.stored);
            expect(db.quarantine.length).toBe(totals.regressions + totals.conflicts + totals.jumps);
            expect(new Set(totals.quarantineIds).size).toBe(db.quarantine.length);
            // And what the counters say.
            expect(ingest.counters.accepted - before.accepted).toBe(db.rows.length);
            expect(ingest.counters.duplicates - before.duplicates).toBe(totals.duplicates);
            expect(
              (ingest.counters.rejected.TS_CONFLICT ?? 0) - (before.rejected.TS_CONFLICT ?? 0),
            ).toBe(totals.conflicts);
            expect(
              (ingest.counters.rejected.SEQ_REGRESSION ?? 0) -
                (before.rejected.SEQ_REGRESSION ?? 0),
            ).toBe(totals.regressions);
            // One reading per instant, and each stored row is a reading that was sent.
            const sent = new Set(
              perDevice.flatMap((rs, d) =>
                rs.map((r) => `${prefix}-${d}|${r.ts}|${r.seq}|${r.v / 1}`),
              ),
            );
            const instants = new Set<string>();
            for (const r of db.rows) {
              expect(sent.has(`${r.device_id}|${r.ts.getTime()}|${Number(r.seq)}|${r.ph}`)).toBe(
                true,
              );
              instants.add(`${r.device_id}|${r.ts.getTime()}`);
            }
            expect(instants.size).toBe(db.rows.length);
            // A conflict is a different reading at a stored instant: never the stored one itself.
            const storedAt = new Map(
              db.rows.map((r) => [`${r.device_id}|${r.ts.getTime()}`, `${Number(r.seq)}|${r.ph}`]),
            );
            for (const q of db.quarantine) {
              if (q.reasons[0]!.code !== 'TS_CONFLICT') continue;
              const p = JSON.parse(q.payload.toString()) as {
                seq: number;
                ts: string;
                readings: { ph: number };
              };
              const there = storedAt.get(`${q.device_id}|${Date.parse(p.ts)}`);
              expect(there).toBeDefined();
              expect(there).not.toBe(`${p.seq}|${p.readings.ph}`);
            }
          },
        ),
        { numRuns: runs, seed },
      );
    },
    Math.max(240_000, runs * 6_000),
  );
});
