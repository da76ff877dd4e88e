import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensurePartitions, timeseriesInfo } from '../db/timeseries.ts';
import { createTestDatabase } from '../test/db.ts';
import type { RawReading } from './mrv-encoding.ts';
import { createMrvRepo } from './mrv-repo.ts';

/**
 * Which readings a report archives (migration 0040): a unit's readings are found through every
 * device that was ever on it, by the readings key, not by scanning the fleet for the unit id. The
 * oracle is that scan. Devices move between units while they report, as they do in the field.
 */

const t = await createTestDatabase();
const repo = createMrvRepo();
const units: string[] = [];
const start = new Date('2026-10-01T00:00:00Z');
const end = new Date('2026-10-02T00:00:00Z');

beforeAll(async () => {
  const mode = (await timeseriesInfo(t.database.pool)).mode;
  const behind = Math.ceil((Date.now() - start.getTime()) / 86_400_000) + 8;
  await ensurePartitions(t.database.pool, mode, { aheadDays: 1, behindDays: behind });
  const site = await t.database.pool.query<{ id: string }>(
    `INSERT INTO sites (name) VALUES ('archive units site') RETURNING id`,
  );
  for (let i = 0; i < 3; i += 1)
    units.push(
      (
        await t.database.pool.query<{ id: string }>(
          `INSERT INTO units (site_id, kind, name) VALUES ($1, 'biodigester', $2) RETURNING id`,
          [site.rows[0]!.id, `archive unit ${i}`],
        )
      ).rows[0]!.id,
    );
});

type Step =
  | { kind: 'move'; device: number; unit: number }
  | { kind: 'reading'; device: number; minute: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    kind: fc.constant('move' as const),
    device: fc.nat(3),
    unit: fc.nat(2),
  }),
  fc.record({
    kind: fc.constant('reading' as const),
    device: fc.nat(3),
    // Some before and after the period: those are never archived.
    minute: fc.integer({ min: -30, max: 1440 + 30 }),
  }),
);

const key = (r: { device_id: string; ts: Date }) => `${r.device_id} ${r.ts.toISOString()}`;

describe('a report archives every reading stored under its unit in the period, and only those', () => {
  it('whatever devices moved between units while reporting', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.nat(2), { minLength: 4, maxLength: 4 }),
        fc.array(step, { maxLength: 60 }),
        async (initial, steps) => {
          const run = randomUUID().slice(0, 8);
          const devices = initial.map((u, i) => ({ id: `au-${run}-${i}`, unit: u }));
          const pool = t.database.pool;
          for (const d of devices)
            await pool.query(
              `INSERT INTO devices (id, unit_id, kind) VALUES ($1, $2, 'biodigester')`,
              [d.id, units[d.unit]],
            );
          const used = new Set<string>();
          for (const s of steps) {
            const d = devices[s.device]!;
            if (s.kind === 'move') {
              d.unit = s.unit;
              await pool.query('UPDATE devices SET unit_id = $2 WHERE id = $1', [
                d.id,
                units[s.unit],
              ]);
            } else if (!used.has(`${d.id}/${s.minute}`)) {
              used.add(`${d.id}/${s.minute}`);
              // Stored under the unit the device is on when it sends, as ingest does.
              await pool.query(
                `INSERT INTO readings (ts, device_id, unit_id, seq, gas_flow_lpm) VALUES ($1, $2, $3, $4, 1)`,
                [new Date(start.getTime() + s.minute * 60_000), d.id, units[d.unit], s.minute],
              );
            }
          }
          const ours = new RegExp(`^au-${run}-`);
          for (const unit of units) {
            const expected = (
              await pool.query<{ device_id: string; ts: Date }>(
                'SELECT device_id, ts FROM readings WHERE unit_id = $1 AND ts >= $2 AND ts < $3',
                [unit, start, end],
              )
            ).rows
              .filter((r) => ours.test(r.device_id))
              .map(key)
              .sort();
            // In a transaction rolled back: each unit archives as if first, the next run starts clean.
            await t.database.db
              .transaction(async (tx) => {
                const report = randomUUID();
                await repo.archive(tx, unit, start, end, report);
                const scanned: RawReading[] = [];
                for await (const b of repo.scanLeaves(tx, unit, start, end, [report]))
                  scanned.push(...b);
                const keyset: RawReading[] = [];
                for await (const r of repo.leaves(tx, unit, start, end, [report])) keyset.push(r);
                // The one-COPY pass and the keyset batches read the same leaves, in the same order.
                expect(scanned).toEqual(keyset);
                const got = scanned
                  .filter((r) => ours.test(r.deviceId))
                  .map((r) =>
                    key({ device_id: r.deviceId, ts: new Date(Number(r.tsMicros / 1000n)) }),
                  )
                  .sort();
                expect(got).toEqual(expected);
                throw new Rollback();
              })
              .catch((e: unknown) => {
                if (!(e instanceof Rollback)) throw e;
              });
          }
        },
      ),
      { numRuns: 40 },
    );
  }, 300_000);

  it('the history of a device’s units is kept by the database and cannot be rewritten', async () => {
    const pool = t.database.pool;
    await pool.query(
      `INSERT INTO devices (id, unit_id, kind) VALUES ('au-history', $1, 'biodigester')`,
      [units[0]],
    );
    await pool.query(`UPDATE devices SET unit_id = $1 WHERE id = 'au-history'`, [units[1]]);
    const pairs = await pool.query<{ unit_id: string }>(
      `SELECT unit_id FROM device_unit_history WHERE device_id = 'au-history' ORDER BY unit_id`,
    );
    expect(pairs.rows.map((r) => r.unit_id).sort()).toEqual([units[0], units[1]].sort());
    await expect(
      pool.query(`DELETE FROM device_unit_history WHERE device_id = 'au-history'`),
    ).rejects.toThrow(/append-only/);
    await expect(
      pool.query(`UPDATE device_unit_history SET unit_id = $1 WHERE device_id = 'au-history'`, [
        units[2],
      ]),
    ).rejects.toThrow(/append-only/);
  });
});

class Rollback extends Error {}
