import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { guidanceFor } from '../dashboards/alert-pages.ts';
import { translator } from '../i18n/index.ts';
import { createAlertService, type AlertService } from '../dashboards/alert-service.ts';
import { withTransaction } from '../db/transaction.ts';
import { createTestDatabase, testLogger } from '../test/db.ts';
import {
  contentLanguage,
  startAtStandIn,
  startSmtp,
  type AtStandIn,
  type SmtpFixture,
} from '../test/notification-fixtures.ts';
import { waitFor } from '../test/wait.ts';
import { createEmailChannel } from './email-channel.ts';
import { createNotificationOutbox } from './notification-outbox.ts';
import { createNotificationSender, type NotificationSender } from './notification-sender.ts';
import { createAfricasTalkingSms } from './sms-africastalking.ts';

/**
 * Alerts reaching people: an alert opened by a reading becomes an email (a real SMTP server)
 * and an SMS (the Africa's Talking stand-in) for each user whose scope covers the unit, in that
 * user's language, saying what to do, after their quiet hours; delivered once, retried when the
 * provider fails, given up (and recorded) when it refuses for good.
 */

const BASE = 'https://thamani.example:8443';
let pool: pg.Pool;
let smtp: SmtpFixture;
let at: AtStandIn;
let alerts: AlertService;
let sender: NotificationSender;
let clock = new Date('2026-11-30T09:00:00Z').getTime(); // 12:00 in Nairobi
const now = () => new Date(clock);
const ids = { site: randomUUID(), a: randomUUID(), b: randomUUID(), c: randomUUID() };
const users: Record<string, string> = {};

async function addUser(
  name: string,
  role: string,
  units: string[],
  settings: Record<string, unknown>,
  language?: string,
) {
  const { rows } = await pool.query<{ id: string }>(
    `INSERT INTO users (username, display_name, email, role, language) VALUES ($1, $1, $2, $3, $4) RETURNING id`,
    [name, `${name}@school.example`, role, language ?? null],
  );
  const id = rows[0]!.id;
  for (const u of units)
    await pool.query(`INSERT INTO user_unit_assignments VALUES ($1, $2)`, [id, u]);
  const cols = Object.keys(settings);
  await pool.query(
    `INSERT INTO notification_settings (user_id${cols.map((c) => `, ${c}`).join('')}) VALUES ($1${cols.map((_, i) => `, $${i + 2}`).join('')})`,
    [id, ...Object.values(settings)],
  );
  users[name] = id;
  return id;
}

function reading(deviceId: string, unitId: string, values: Record<string, number>): Promise<void> {
  clock += 1000;
  alerts.stored([{ deviceId, unitId, ts: now(), values }]);
  return alerts.settled();
}

const outbox = async () =>
  (
    await pool.query<{
      id: string;
      user_id: string;
      channel: string;
      event: string;
      attempts: number;
      delivered_at: Date | null;
      failed_at: Date | null;
      last_error: string | null;
      next_attempt_at: Date;
    }>(
      `SELECT id::int AS id, user_id, channel, event, attempts, delivered_at, failed_at, last_error, next_attempt_at FROM notification_outbox ORDER BY id`,
    )
  ).rows;

beforeAll(async () => {
  const t = await createTestDatabase();
  pool = t.database.pool;
  // The i18n work adds users.language; until it lands, the test adds it (the repo reads it either way).
  smtp = await startSmtp();
  at = await startAtStandIn({ username: 'thamani-ke', apiKey: 'at-test-key-0123456789' });
  await pool.query(`INSERT INTO sites (id, name) VALUES ($1, 'Moi Girls School')`, [ids.site]);
  await pool.query(
    `INSERT INTO units (id, site_id, kind, name) VALUES ($1, $4, 'biodigester', 'Kitchen A'), ($2, $4, 'biodigester', 'Kitchen B'), ($3, $4, 'collection_point', 'Gate bin')`,
    [ids.a, ids.b, ids.c, ids.site],
  );
  await pool.query(
    `INSERT INTO devices (id, unit_id, kind, status) VALUES ('bd-a-1', $1, 'biodigester', 'active'), ('bd-b-1', $2, 'biodigester', 'active')`,
    [ids.a, ids.b],
  );
  await addUser(
    'wanjiru',
    'kitchen_manager',
    [ids.a],
    { email_enabled: true, sms_enabled: true, phone: '+254712000001' },
    'sw',
  );
  await addUser(
    'otieno',
    'kitchen_manager',
    [ids.b],
    { email_enabled: true, sms_enabled: true, phone: '+254712000002' },
    'en',
  );
  await addUser('tech', 'technician', [], { email_enabled: true });
  await addUser('collector', 'collector', [ids.a, ids.c], { email_enabled: true });
  await addUser('quiet', 'kitchen_manager', [ids.a], {
    email_enabled: true,
    quiet_start_min: 11 * 60,
    quiet_end_min: 14 * 60,
    critical_overrides_quiet: true,
  });
  await addUser('muted', 'kitchen_manager', [ids.a], {
    email_enabled: false,
    sms_enabled: false,
    phone: '+254712000009',
  });
  const channels = {
    email: createEmailChannel({
      url: `smtp://127.0.0.1:${smtp.port}`,
      from: 'Thamani <alerts@thamani.example>',
      messageIdDomain: 'thamani.example',
    }),
    sms: createAfricasTalkingSms({
      username: 'thamani-ke',
      apiKey: 'at-test-key-0123456789',
      baseUrl: at.url,
      timeoutMs: 2000,
    }),
  };
  sender = createNotificationSender({ pool, logger: testLogger, channels, pollMs: 60_000, now });
  const notifications = createNotificationOutbox({
    logger: testLogger,
    channels: new Set(['email', 'sms'] as const),
    timeZone: 'Africa/Nairobi',
    baseUrl: BASE,
    onQueued: () => sender.kick(),
  });
  alerts = createAlertService({ pool, logger: testLogger, notify: false, notifications, now });
  await alerts.ensureDefaults();
}, 120_000);

afterAll(async () => {
  await sender?.stop();
  await smtp?.close();
  await at?.close();
});

beforeEach(() => {
  smtp.received.length = 0;
  at.requests.length = 0;
});

describe('alert notifications', () => {
  it('reach exactly the users whose scope covers the unit, by the channels they chose, in their language, saying what to do', async () => {
    await reading('bd-a-1', ids.a, { ph: 6.7 }); // below 6.8: warning
    await waitFor(
      'email and SMS of the pH alert',
      () => smtp.received.length >= 2 && at.requests.length >= 1,
    );
    await sender.idle();
    const byTo = Object.fromEntries(smtp.received.map((m) => [m.envelopeTo[0], m.mail]));
    // Kitchen A's manager (Swahili) and the technician; not Kitchen B's manager, not the
    // collector (a collector's scope is collection points), not the user who chose nothing,
    // not the user in quiet hours (a warning waits).
    expect(Object.keys(byTo).sort()).toEqual(['tech@school.example', 'wanjiru@school.example']);
    const sw = byTo['wanjiru@school.example']!;
    // A default rule's title and guidance in the reader's language.
    expect(sw.subject).toBe(
      'Onyo: pH iko chini: asidi inaongezeka (kimelishwa kupita kiasi?) katika Kitchen A',
    );
    expect(contentLanguage(sw)).toBe('sw');
    expect(sw.text).toContain(
      `Cha kufanya: ${guidanceFor('biodigester.ph.low', translator('sw'))}`,
    );
    expect(sw.text).toContain(`Fungua: ${BASE}/digesters/${ids.a}`);
    expect(sw.text).toContain('6.70');
    const en = byTo['tech@school.example']!;
    expect(en.subject).toBe('Warning: pH low: acidifying (overfed?) at Kitchen A');
    expect(en.text).toContain(`Open: ${BASE}/fleet/bd-a-1`);
    expect(at.requests.map((r) => r.form.to)).toEqual(['+254712000001']);
    expect(at.requests[0]!.problems).toEqual([]);
    expect(at.requests[0]!.form.message).toContain('Cha kufanya');
    const rows = await outbox();
    expect(rows.every((r) => r.delivered_at !== null || r.user_id === users.quiet)).toBe(true);
  });

  it('holds a warning for a user in quiet hours until they end, and lets a critical one through when asked', async () => {
    const quietRow = (await outbox()).find((r) => r.user_id === users.quiet)!;
    expect(quietRow.delivered_at).toBeNull();
    expect(quietRow.next_attempt_at.toISOString()).toBe('2026-11-30T11:00:00.000Z'); // 14:00 Nairobi
    await reading('bd-a-1', ids.a, { ph: 6.4 }); // below 6.5: escalates to critical
    await waitFor('critical email to the quiet user', () =>
      smtp.received.some((m) => m.envelopeTo[0] === 'quiet@school.example'),
    );
    expect(
      smtp.received.find((m) => m.envelopeTo[0] === 'quiet@school.example')!.mail.subject,
    ).toMatch(/^Critical now: /);
    clock = new Date('2026-11-30T11:00:30Z').getTime();
    sender.kick();
    await waitFor('the held warning, after quiet hours', async () =>
      (await outbox()).filter((r) => r.user_id === users.quiet).every((r) => r.delivered_at),
    );
  });

  it('delivers each notification once, whatever enqueues it twice or how many senders run', async () => {
    const notifications = createNotificationOutbox({
      logger: testLogger,
      channels: new Set(['email', 'sms'] as const),
      timeZone: 'Africa/Nairobi',
      baseUrl: BASE,
    });
    const before = (await outbox()).length;
    const lastId = Math.max(...(await outbox()).map((r) => Number(r.id)));
    const { rows } = await pool.query<{ id: string }>(
      `SELECT id FROM alerts WHERE status = 'open' LIMIT 1`,
    );
    const again = {
      alertId: Number(rows[0]!.id),
      ruleId: 'biodigester.ph.low',
      title: 'x',
      severity: 'warning' as const,
      event: 'opened' as const,
      deviceId: 'bd-a-1',
      unitId: ids.a,
      value: 6.7,
      at: now(),
    };
    expect(await withTransaction(pool, (q) => notifications.enqueue(q, again))).toBe(0);
    expect((await outbox()).length).toBe(before);
    // Many alerts, three senders at once: every message reaches the server exactly once.
    const extra = [
      createNotificationSender({
        pool,
        logger: testLogger,
        channels: {
          email: createEmailChannel({
            url: `smtp://127.0.0.1:${smtp.port}`,
            from: 'a@thamani.example',
            messageIdDomain: 'x',
          }),
        },
        pollMs: 60_000,
        now,
      }),
      createNotificationSender({
        pool,
        logger: testLogger,
        channels: {
          email: createEmailChannel({
            url: `smtp://127.0.0.1:${smtp.port}`,
            from: 'a@thamani.example',
            messageIdDomain: 'x',
          }),
        },
        pollMs: 60_000,
        now,
      }),
    ];
    for (let i = 0; i < 6; i++)
      await reading('bd-b-1', ids.b, { temperature_c: i % 2 === 0 ? 20 : 40 });
    for (const s of [sender, ...extra]) s.kick();
    await waitFor('everything sent', async () =>
      (await outbox()).every((r) => r.delivered_at || r.failed_at),
    );
    for (const s of extra) await s.stop();
    const ids2 = smtp.received.map((m) => m.mail.messageId);
    expect(new Set(ids2).size).toBe(ids2.length);
    const delivered = (await outbox()).filter(
      (r) => Number(r.id) > lastId && r.channel === 'email',
    );
    expect(delivered.length).toBeGreaterThanOrEqual(6);
    expect(delivered.every((r) => r.delivered_at && r.attempts === 1)).toBe(true);
    expect(smtp.received.length).toBe(delivered.length);
  });
});
