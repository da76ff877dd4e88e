import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAlertService } from '../dashboards/alert-service.ts';
import { withTransaction, rollback } from '../db/transaction.ts';
import { createTestDatabase, testLogger } from '../test/db.ts';
import {
  startAtStandIn,
  startSmtp,
  type AtStandIn,
  type SmtpFixture,
} from '../test/notification-fixtures.ts';
import { waitFor } from '../test/wait.ts';
import { createEmailChannel } from './email-channel.ts';
import { scopeCovers, type Role } from './notification-fns.ts';
import { createNotificationOutbox, type AlertTransition } from './notification-outbox.ts';
import { notificationRepo } from './notification-repo.ts';
import { createNotificationSender } from './notification-sender.ts';
import { createAfricasTalkingSms } from './sms-africastalking.ts';

/**
 * Delivery when things go wrong: a provider failing is retried with backoff until it answers,
 * a permanent refusal or too many attempts is given up and recorded, and neither a dead
 * provider nor a broken outbox stops alerts from being evaluated. And the recipients of every
 * unit are exactly the users whose scope covers it, over generated users and units.
 */

let pool: pg.Pool;
let smtp: SmtpFixture;
let at: AtStandIn;
let clock = new Date('2026-11-30T09:00:00Z').getTime();
const now = () => new Date(clock);
const site = randomUUID();
const unit = randomUUID();

async function user(
  role: string,
  settings: { email?: boolean; phone?: string },
  units: string[] = [],
) {
  const name = `u-${randomUUID().slice(0, 8)}`;
  const { rows } = await pool.query<{ id: string }>(
    `INSERT INTO users (username, display_name, email, role) VALUES ($1, $1, $2, $3) RETURNING id`,
    [name, `${name}@school.example`, role],
  );
  const id = rows[0]!.id;
  for (const u of units)
    await pool.query(`INSERT INTO user_unit_assignments VALUES ($1, $2)`, [id, u]);
  await pool.query(
    `INSERT INTO notification_settings (user_id, email_enabled, sms_enabled, phone) VALUES ($1, $2, $3, $4)`,
    [id, settings.email ?? false, settings.phone !== undefined, settings.phone ?? null],
  );
  return id;
}

const transition = (alertId: number): AlertTransition => ({
  alertId,
  ruleId: 'biodigester.ph.low',
  title: 'pH low',
  severity: 'warning',
  event: 'opened',
  deviceId: 'bd-d-1',
  unitId: unit,
  value: 6.7,
  at: now(),
});

const rowsOf = async (userId: string) =>
  (
    await pool.query<{
      channel: string;
      attempts: number;
      delivered_at: Date | null;
      failed_at: Date | null;
      last_error: string | null;
    }>(
      `SELECT channel, attempts, delivered_at, failed_at, last_error FROM notification_outbox WHERE user_id = $1 ORDER BY id`,
      [userId],
    )
  ).rows;

beforeAll(async () => {
  pool = (await createTestDatabase()).database.pool;
  smtp = await startSmtp();
  at = await startAtStandIn({ username: 'thamani-ke', apiKey: 'at-key-0123456789abcdef' });
  await pool.query(`INSERT INTO sites (id, name) VALUES ($1, 'Site D')`, [site]);
  await pool.query(
    `INSERT INTO units (id, site_id, kind, name) VALUES ($1, $2, 'biodigester', 'Digester D')`,
    [unit, site],
  );
  await pool.query(
    `INSERT INTO devices (id, unit_id, kind, status) VALUES ('bd-d-1', $1, 'biodigester', 'active')`,
    [unit],
  );
}, 120_000);

afterAll(async () => {
  await smtp?.close();
  await at?.close();
});

const outbox = createNotificationOutbox({
  logger: testLogger,
  channels: new Set(['email', 'sms'] as const),
  timeZone: 'Africa/Nairobi',
  baseUrl: 'https://t.example',
});

describe('delivery', () => {
  it('retries a failing provider with backoff until it answers, and gives up for good on a refused number', async () => {
    const ok = await user('kitchen_manager', { phone: '+254712000101' }, [unit]);
    const refused = await user('kitchen_manager', { phone: at.numbers.invalid }, [unit]);
    await withTransaction(pool, (q) => outbox.enqueue(q, transition(1001)));
    const sms = createAfricasTalkingSms({
      username: 'thamani-ke',
      apiKey: 'at-key-0123456789abcdef',
      baseUrl: at.url,
    });
    const sender = createNotificationSender({
      pool,
      logger: testLogger,
      channels: { sms },
      pollMs: 60_000,
      now,
    });
    try {
      at.failNext(2);
      // The refused number and the first 500 come in the same pass (order within it is free).
      await waitFor(
        'first attempts',
        async () =>
          (await rowsOf(ok))[0]!.attempts >= 1 && (await rowsOf(refused))[0]!.attempts >= 1,
      );
      await sender.idle();
      expect((await rowsOf(refused))[0]).toMatchObject({
        attempts: 1,
        delivered_at: null,
        last_error: "Africa's Talking 403 InvalidPhoneNumber",
      });
      expect((await rowsOf(refused))[0]!.failed_at).not.toBeNull();
      for (let attempt = 2; (await rowsOf(ok))[0]!.delivered_at === null; attempt++) {
        expect(attempt).toBeLessThanOrEqual(3);
        // Not before its backoff: a kick at the same instant sends nothing.
        const before = (await rowsOf(ok))[0]!.attempts;
        sender.kick();
        await sender.idle();
        expect((await rowsOf(ok))[0]!.attempts).toBe(before);
        clock += 3_600_000;
        sender.kick();
        await waitFor('the retry', async () => (await rowsOf(ok))[0]!.attempts > before);
        await sender.idle();
      }
      expect((await rowsOf(ok))[0]).toMatchObject({
        attempts: 3,
        last_error: null,
        failed_at: null,
      });
      expect(at.requests.filter((r) => r.form.to === '+254712000101')).toHaveLength(3);
      expect(at.requests.filter((r) => r.form.to === at.numbers.invalid)).toHaveLength(1);
    } finally {
      await sender.stop();
    }
  });

  it('gives up after the most attempts allowed, keeping the last error', async () => {
    const u = await user('technician', { email: true });
    await withTransaction(pool, (q) => outbox.enqueue(q, transition(1002)));
    const down = createEmailChannel({
      url: `smtp://127.0.0.1:${smtp.closedPort}`,
      from: 'a@t.example',
      messageIdDomain: 't.example',
    });
    const sender = createNotificationSender({
      pool,
      logger: testLogger,
      channels: { email: down },
      pollMs: 60_000,
      maxAttempts: 3,
      now,
    });
    try {
      for (let i = 0; i < 3; i++) {
        sender.kick();
        await waitFor(`attempt ${i + 1}`, async () => (await rowsOf(u))[0]!.attempts === i + 1);
        await sender.idle();
        clock += 3_600_000;
      }
      const [row] = await rowsOf(u);
      expect(row).toMatchObject({ attempts: 3, delivered_at: null });
      expect(row!.failed_at).not.toBeNull();
      expect(row!.last_error).toMatch(/ECONNREFUSED|ESOCKET|ECONNECTION/);
    } finally {
      await sender.stop();
    }
  });

  it('never stops alert evaluation: a provider that hangs, or an outbox that cannot be written', async () => {
    const silent = await user('kitchen_manager', { phone: at.numbers.silent }, [unit]);
    const sms = createAfricasTalkingSms({
      username: 'thamani-ke',
      apiKey: 'at-key-0123456789abcdef',
      baseUrl: at.url,
      timeoutMs: 60_000,
    });
    const sender = createNotificationSender({
      pool,
      logger: testLogger,
      channels: { sms },
      pollMs: 60_000,
      now,
    });
    const notifications = createNotificationOutbox({
      logger: testLogger,
      channels: new Set(['sms'] as const),
      timeZone: 'Africa/Nairobi',
      baseUrl: 'https://t.example',
      onQueued: () => sender.kick(),
    });
    const alerts = createAlertService({
      pool,
      logger: testLogger,
      notify: false,
      notifications,
      now,
    });
    await alerts.ensureDefaults();
    const stored = (values: Record<string, number>) => {
      clock += 1000;
      alerts.stored([{ deviceId: 'bd-d-1', unitId: unit, ts: now(), values }]);
      return alerts.settled();
    };
    const open = async () =>
      (
        await pool.query<{ rule_id: string }>(
          `SELECT rule_id FROM alerts WHERE device_id = 'bd-d-1' AND status = 'open' ORDER BY rule_id`,
        )
      ).rows;
    try {
      await stored({ ph: 6.0 });
      // The SMS is stuck at the provider; the evaluator has moved on and goes on.
      await waitFor('the SMS in flight', () =>
        at.requests.some((r) => r.form.to === at.numbers.silent),
      );
      await stored({ temperature_c: 20 });
      expect(await open()).toEqual([
        { rule_id: 'biodigester.ph.low' },
        { rule_id: 'biodigester.temperature_c.low' },
      ]);
      // An outbox that cannot be written (a rolling upgrade, a bad row): the alert still opens.
      await pool.query(`ALTER TABLE notification_outbox RENAME TO notification_outbox_away`);
      try {
        await stored({ methane_pct: 40 });
      } finally {
        await pool.query(`ALTER TABLE notification_outbox_away RENAME TO notification_outbox`);
      }
      expect((await open()).map((r) => r.rule_id)).toContain('biodigester.methane_pct.low');
      expect((await rowsOf(silent)).length).toBe(2);
    } finally {
      at.requests.length = 0;
      await at.close();
      at = await startAtStandIn({ username: 'thamani-ke', apiKey: 'at-key-0123456789abcdef' });
      await sender.stop();
    }
  });

  it('notifies exactly the users whose scope covers the unit, over generated users and units', async () => {
    const kinds = ['biodigester', 'collection_point'] as const;
    const roles: Role[] = ['admin', 'technician', 'kitchen_manager', 'collector', 'auditor'];
    // Users the earlier tests made (a technician covers every unit) are left out of the comparison.
    const preexisting = new Set(
      (await pool.query<{ id: string }>(`SELECT id FROM users`)).rows.map((r) => r.id),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom(...kinds), { minLength: 1, maxLength: 4 }),
        fc.array(
          fc.record({
            role: fc.constantFrom(...roles),
            units: fc.array(fc.nat(3), { maxLength: 4 }),
            disabled: fc.boolean(),
            chose: fc.boolean(),
          }),
          { minLength: 1, maxLength: 6 },
        ),
        async (unitKinds, people) => {
          await withTransaction(pool, async (q) => {
            const units = unitKinds.map((kind) => ({ id: randomUUID(), kind }));
            for (const u of units)
              await q.query(`INSERT INTO units (id, site_id, kind, name) VALUES ($1, $2, $3, $4)`, [
                u.id,
                site,
                u.kind,
                `gen-${u.id}`,
              ]);
            const expected = new Map<string, string[]>(units.map((u) => [u.id, []]));
            for (const p of people) {
              const name = `g-${randomUUID()}`;
              const { rows } = await q.query<{ id: string }>(
                `INSERT INTO users (username, display_name, role, disabled) VALUES ($1, $1, $2, $3) RETURNING id`,
                [name, p.role, p.disabled],
              );
              const id = rows[0]!.id;
              const assigned = new Set(
                p.units.filter((i) => i < units.length).map((i) => units[i]!.id),
              );
              for (const uid of assigned)
                await q.query(`INSERT INTO user_unit_assignments VALUES ($1, $2)`, [id, uid]);
              await q.query(
                `INSERT INTO notification_settings (user_id, email_enabled) VALUES ($1, $2)`,
                [id, p.chose],
              );
              for (const u of units)
                if (p.chose && !p.disabled && scopeCovers({ role: p.role, units: assigned }, u))
                  expected.get(u.id)!.push(id);
            }
            for (const u of units) {
              const got = (await notificationRepo.recipientsFor(q, u.id))
                .map((r) => r.userId)
                .filter((id) => !preexisting.has(id));
              expect(got.sort()).toEqual(expected.get(u.id)!.sort());
            }
            return rollback;
          });
        },
      ),
      { numRuns: 25 },
    );
  });
});
