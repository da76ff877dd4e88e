import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, testLogger } from '../test/db.ts';
import { startSmtp, type SmtpFixture } from '../test/notification-fixtures.ts';
import { waitFor } from '../test/wait.ts';
import { createEmailChannel } from './email-channel.ts';
import { createNotificationSender } from './notification-sender.ts';
import { createSummaryScheduler, localMidnight } from './notification-summary.ts';

/**
 * The daily summary against a seeded database: gas from the hourly mean flow, hours the sensors
 * reported, alerts opened (critical among them) and still open, for the manager's own digester
 * only, in their language, once per day at the configured local hour.
 */

let pool: pg.Pool;
let smtp: SmtpFixture;
let clock = new Date('2026-12-01T03:30:00Z').getTime(); // 06:30 in Nairobi, before the 07:00 hour
const now = () => new Date(clock);
const site = randomUUID();
const mine = randomUUID();
const other = randomUUID();

beforeAll(async () => {
  pool = (await createTestDatabase()).database.pool;
  smtp = await startSmtp();
  await pool.query(`INSERT INTO sites (id, name) VALUES ($1, 'Kenya High')`, [site]);
  await pool.query(
    `INSERT INTO units (id, site_id, kind, name) VALUES ($1, $3, 'biodigester', 'Main digester'), ($2, $3, 'biodigester', 'Other digester')`,
    [mine, other, site],
  );
  await pool.query(
    `INSERT INTO devices (id, unit_id, kind, status) VALUES ('bd-s-1', $1, 'biodigester', 'active'), ('bd-s-2', $2, 'biodigester', 'active')`,
    [mine, other],
  );
  const day = localMidnight('2026-11-30', 'Africa/Nairobi').getTime(); // 2026-11-29T21:00Z
  // Ten hours with data on 30 Nov (local): 20 L/min then 30 L/min in each → mean 25 L/min an hour
  // = 1.5 m³ an hour, 15 m³ in all. One reading the day before and one the day after: not counted.
  let seq = 1;
  for (let hour = 6; hour < 16; hour++)
    for (const [min, flow] of [
      [10, 20],
      [40, 30],
    ] as const)
      await pool.query(
        `INSERT INTO readings (ts, device_id, unit_id, seq, gas_flow_lpm) VALUES ($1, 'bd-s-1', $2, $3, $4)`,
        [new Date(day + hour * 3_600_000 + min * 60_000), mine, seq++, flow],
      );
  for (const ts of [day - 60_000, day + 86_400_000 + 60_000])
    await pool.query(
      `INSERT INTO readings (ts, device_id, unit_id, seq, gas_flow_lpm) VALUES ($1, 'bd-s-1', $2, $3, 500)`,
      [new Date(ts), mine, seq++],
    );
  await pool.query(
    `INSERT INTO readings (ts, device_id, unit_id, seq, gas_flow_lpm) VALUES ($1, 'bd-s-2', $2, 1, 999)`,
    [new Date(day + 3_600_000), other],
  );
  await pool.query(
    `INSERT INTO alert_rules (id, unit_kind, metric, condition, warn, critical, clear, title) VALUES ('biodigester.ph.low', 'biodigester', 'ph', 'below', 6.8, 6.5, 6.9, 'pH low') ON CONFLICT DO NOTHING`,
  );
  const alert = (unit: string, severity: string, status: string, opened: number) =>
    pool.query(
      `INSERT INTO alerts (rule_id, device_id, unit_id, severity, status, opened_at) VALUES ('biodigester.ph.low', $1, $2, $3, $4, $5)`,
      [unit === mine ? 'bd-s-1' : 'bd-s-2', unit, severity, status, new Date(opened)],
    );
  await alert(mine, 'warning', 'closed', day + 8 * 3_600_000);
  await alert(mine, 'critical', 'open', day + 12 * 3_600_000);
  await alert(mine, 'warning', 'closed', day - 3_600_000); // the day before
  await alert(other, 'critical', 'open', day + 3_600_000);
  const { rows } = await pool.query<{ id: string }>(
    `INSERT INTO users (username, display_name, email, role, language) VALUES ('amina', 'Amina', 'amina@school.example', 'kitchen_manager', 'sw') RETURNING id`,
  );
  await pool.query(`INSERT INTO user_unit_assignments VALUES ($1, $2)`, [rows[0]!.id, mine]);
  await pool.query(
    `INSERT INTO notification_settings (user_id, email_enabled, summary) VALUES ($1, true, 'daily')`,
    [rows[0]!.id],
  );
}, 120_000);

afterAll(async () => {
  await smtp?.close();
});

describe('daily summary', () => {
  it('reports gas, reporting hours and alerts of the previous local day, for the manager’s own digester, once, at the configured hour', async () => {
    const sender = createNotificationSender({
      pool,
      logger: testLogger,
      channels: {
        email: createEmailChannel({
          url: `smtp://127.0.0.1:${smtp.port}`,
          from: 'alerts@t.example',
          messageIdDomain: 't.example',
        }),
      },
      pollMs: 60_000,
      now,
    });
    const summaries = createSummaryScheduler({
      pool,
      logger: testLogger,
      timeZone: 'Africa/Nairobi',
      hour: 7,
      weekday: 1,
      baseUrl: 'https://t.example',
      now,
      onQueued: () => sender.kick(),
    });
    try {
      expect(await summaries.tick()).toBe(0); // 06:30: not yet
      clock = new Date('2026-12-01T04:05:00Z').getTime(); // 07:05
      expect(await summaries.tick()).toBe(1);
      expect(await summaries.tick()).toBe(0); // once a day
      await waitFor('the summary email', () => smtp.received.length === 1);
      const mail = smtp.received[0]!;
      expect(mail.envelopeTo).toEqual(['amina@school.example']);
      expect(mail.mail.subject).toBe('Muhtasari wa kila siku wa Thamani, 2026-11-30');
      const text = mail.mail.text ?? '';
      expect(text).toContain('Main digester (Kenya High)');
      expect(text).toContain('Gesi iliyozalishwa: m³ 15');
      expect(text).toContain('Vihisi vilivyoripoti: 42% ya saa'); // 10 of 24 hours
      expect(text).toContain('Tahadhari zilizofunguliwa: 2 (1 za hatari); bado wazi: 1');
      expect(text).not.toContain('Other digester');
    } finally {
      await sender.stop();
    }
  });
});
