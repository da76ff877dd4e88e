import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createTestDatabase } from '../test/db.ts';
import { localMidnight } from './notification-summary.ts';
import { notificationRepo } from './notification-repo.ts';

/**
 * A summary's day is a day of the configured zone: in Asia/Kolkata (+5:30) the UTC hour holding
 * local midnight is half in each day, so each day's gas counts only its own half hour.
 */
describe('summary gas in a zone whose offset is not whole hours', () => {
  it('counts the hour cut by local midnight by the minutes inside the day', async () => {
    const pool = (await createTestDatabase()).database.pool;
    const site = randomUUID();
    const unit = randomUUID();
    await pool.query(`INSERT INTO sites (id, name) VALUES ($1, 'Zone School')`, [site]);
    await pool.query(
      `INSERT INTO units (id, site_id, kind, name) VALUES ($1, $2, 'biodigester', 'Zone digester')`,
      [unit, site],
    );
    await pool.query(
      `INSERT INTO devices (id, unit_id, kind, status) VALUES ('bd-z-1', $1, 'biodigester', 'active')`,
      [unit],
    );
    const { rows } = await pool.query<{ id: string }>(
      `INSERT INTO users (username, display_name, role) VALUES ('zone-admin', 'Zone admin', 'admin') RETURNING id`,
    );
    const day = new Date(Date.now() - 5 * 86_400_000).toISOString().slice(0, 10);
    const next = new Date(Date.parse(day) + 86_400_000).toISOString().slice(0, 10);
    const after = new Date(Date.parse(day) + 2 * 86_400_000).toISOString().slice(0, 10);
    const midnight = localMidnight(next, 'Asia/Kolkata').getTime();
    // 60 L/min 20 minutes before and 10 minutes after local midnight: 30 minutes of the hour in
    // each day, 60 × 30 L = 1.8 m³ each (the whole hour would be 3.6 m³ twice over).
    await pool.query(
      `INSERT INTO readings (ts, device_id, unit_id, seq, gas_flow_lpm) VALUES ($1, 'bd-z-1', $3, 1, 60), ($2, 'bd-z-1', $3, 2, 60)`,
      [new Date(midnight - 20 * 60_000), new Date(midnight + 10 * 60_000), unit],
    );
    const gas = async (from: string, to: string) =>
      (
        await notificationRepo.summaryOf(
          pool,
          rows[0]!.id,
          localMidnight(from, 'Asia/Kolkata'),
          localMidnight(to, 'Asia/Kolkata'),
        )
      ).find((u) => u.unitName === 'Zone digester')!.gasM3;
    expect(await gas(day, next)).toBe(1.8);
    expect(await gas(next, after)).toBe(1.8);
    expect(await gas(day, after)).toBe(3.6);
  });
});
