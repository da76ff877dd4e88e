import type { Queryable } from '../db/timeseries.ts';
import type { Channel, Role } from './notification-fns.ts';

/**
 * The SQL of notifications: settings, recipients, the outbox. Each function takes the handle it
 * runs on (the alert's transaction, the sender's pool, a caller's scoped transaction), so the
 * caller decides atomicity and scope.
 */

export interface Recipient {
  userId: string;
  role: Role;
  /** `users.language` when the i18n migration added it (read as JSON so this works either way). */
  language: string | null;
  email: string | null;
  phone: string | null;
  emailEnabled: boolean;
  smsEnabled: boolean;
  quietStartMin: number | null;
  quietEndMin: number | null;
  criticalOverridesQuiet: boolean;
  summary: 'none' | 'daily' | 'weekly';
}

export interface OutboxInsert {
  key: string;
  userId: string;
  channel: Channel;
  kind: 'alert' | 'summary';
  alertId: number | null;
  event: string;
  address: string;
  subject: string | null;
  body: string;
  lang: string;
  notBefore: Date;
}

export interface OutboxRow {
  id: string;
  key: string;
  channel: Channel;
  address: string;
  subject: string | null;
  body: string;
  lang: string;
  attempts: number;
}

export interface UnitSummary {
  unitName: string;
  siteName: string;
  gasM3: number;
  hoursWithData: number;
  opened: number;
  critical: number;
  openNow: number;
}

/** The stored settings row, with the account's own email (the default address). */
export interface SettingsRow {
  email_enabled: boolean;
  sms_enabled: boolean;
  email: string | null;
  phone: string | null;
  quiet_start_min: number | null;
  quiet_end_min: number | null;
  critical_overrides_quiet: boolean;
  summary: 'none' | 'daily' | 'weekly';
  account_email: string | null;
}

const recipientColumns = `u.id AS "userId", u.role::text AS role, to_jsonb(u) ->> 'language' AS language,
  coalesce(s.email, u.email) AS email, s.phone, s.email_enabled AS "emailEnabled", s.sms_enabled AS "smsEnabled",
  s.quiet_start_min AS "quietStartMin", s.quiet_end_min AS "quietEndMin",
  s.critical_overrides_quiet AS "criticalOverridesQuiet", s.summary`;

/**
 * Whose scope covers unit $1: the rule of row-level security (thamani_sees_all,
 * thamani_assigned_units) written for any user rather than the current one. Kept beside
 * notification-fns.ts scopeCovers, which the tests compare it with.
 */
const coversUnit = `(u.role IN ('admin', 'technician') OR EXISTS (
    SELECT 1 FROM user_unit_assignments a JOIN units un ON un.id = a.unit_id
    WHERE a.user_id = u.id AND a.unit_id = $1
      AND ((u.role = 'kitchen_manager' AND un.kind = 'biodigester') OR (u.role = 'collector' AND un.kind = 'collection_point'))))`;

export const notificationRepo = {
  /** Active users who chose a channel and whose scope covers the unit. */
  recipientsFor: async (q: Queryable, unitId: string): Promise<Recipient[]> =>
    (
      await q.query<Recipient>(
        `SELECT ${recipientColumns} FROM notification_settings s JOIN users u ON u.id = s.user_id
         WHERE NOT u.disabled AND u.erased_at IS NULL AND (s.email_enabled OR s.sms_enabled) AND ${coversUnit}`,
        [unitId],
      )
    ).rows,

  /** Active users who asked for a summary. */
  summaryRecipients: async (q: Queryable): Promise<Recipient[]> =>
    (
      await q.query<Recipient>(
        `SELECT ${recipientColumns} FROM notification_settings s JOIN users u ON u.id = s.user_id
         WHERE NOT u.disabled AND u.erased_at IS NULL AND s.summary <> 'none'`,
      )
    ).rows,

  unitFacts: async (q: Queryable, unitId: string) =>
    (
      await q.query<{ kind: string; unitName: string; siteName: string }>(
        `SELECT un.kind::text AS kind, un.name AS "unitName", si.name AS "siteName"
         FROM units un JOIN sites si ON si.id = un.site_id WHERE un.id = $1`,
        [unitId],
      )
    ).rows[0],

  ruleMetric: async (q: Queryable, ruleId: string): Promise<string | null> =>
    (
      await q.query<{ metric: string | null }>(`SELECT metric FROM alert_rules WHERE id = $1`, [
        ruleId,
      ])
    ).rows[0]?.metric ?? null,

  /** Writes notifications; one already written under the same key is left as it is. */
  async enqueue(q: Queryable, rows: readonly OutboxInsert[]): Promise<number> {
    if (rows.length === 0) return 0;
    const { rows: added } = await q.query(
      `INSERT INTO notification_outbox (idempotency_key, user_id, channel, kind, alert_id, event, address, subject, body, lang, next_attempt_at)
       SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::timestamptz[])
       ON CONFLICT (idempotency_key) DO NOTHING RETURNING id`,
      [
        rows.map((r) => r.key),
        rows.map((r) => r.userId),
        rows.map((r) => r.channel),
        rows.map((r) => r.kind),
        rows.map((r) => r.alertId),
        rows.map((r) => r.event),
        rows.map((r) => r.address),
        rows.map((r) => r.subject),
        rows.map((r) => r.body),
        rows.map((r) => r.lang),
        rows.map((r) => r.notBefore),
      ],
    );
    return added.length;
  },

  exists: async (q: Queryable, key: string): Promise<boolean> =>
    (await q.query(`SELECT 1 FROM notification_outbox WHERE idempotency_key = $1`, [key])).rows
      .length > 0,

  /**
   * Takes up to `limit` due notifications for this sender: each gets a lease (its next attempt
   * moved `leaseS` ahead) before it is sent, so another sender skips it, and a sender that dies
   * mid-send leaves it to be tried again when the lease ends. Only the channels this sender
   * has: a process without SMS configured leaves SMS to one that has it.
   */
  claim: async (
    q: Queryable,
    channels: readonly Channel[],
    now: Date,
    limit: number,
    leaseS: number,
  ): Promise<OutboxRow[]> =>
    (
      await q.query<OutboxRow>(
        `UPDATE notification_outbox o SET attempts = o.attempts + 1, next_attempt_at = $1::timestamptz + make_interval(secs => $3)
         WHERE o.id IN (SELECT id FROM notification_outbox WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $1 AND channel = ANY($4::text[])
                        ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED)
         RETURNING o.id::text AS id, o.idempotency_key AS key, o.channel, o.address, o.subject, o.body, o.lang, o.attempts`,
        [now, limit, leaseS, channels],
      )
    ).rows,

  async delivered(q: Queryable, id: string, providerId: string, now: Date): Promise<void> {
    await q.query(
      `UPDATE notification_outbox SET delivered_at = $2, provider_id = $3, last_error = NULL WHERE id = $1`,
      [id, now, providerId],
    );
  },

  /** A failed attempt: tried again after `retryS`, or given up (`giveUp`) with the reason kept. */
  async failed(
    q: Queryable,
    id: string,
    r: { error: string; giveUp: boolean; retryS: number; now: Date },
  ): Promise<void> {
    await q.query(
      `UPDATE notification_outbox SET last_error = $2,
         failed_at = CASE WHEN $3 THEN $4::timestamptz END,
         next_attempt_at = $4::timestamptz + make_interval(secs => $5) WHERE id = $1`,
      [id, r.error.slice(0, 500), r.giveUp, r.now, r.retryS],
    );
  },
  /**
   * Sent or given-up notifications older than `cutoff` (each by the moment it ended): they hold
   * addresses and texts. Those still to be sent stay, however old.
   */
  async pruneEnded(q: Queryable, cutoff: Date): Promise<number> {
    const r = await q.query<{ n: number }>(
      `WITH gone AS (DELETE FROM notification_outbox
          WHERE coalesce(delivered_at, failed_at) < $1 RETURNING 1)
       SELECT count(*)::int AS n FROM gone`,
      [cutoff],
    );
    return r.rows[0]?.n ?? 0;
  },

  /** A savepoint around the notifications queued in an alert's transaction. */
  async savepoint(q: Queryable, step: 'begin' | 'release' | 'rollback'): Promise<void> {
    await q.query(
      step === 'begin'
        ? 'SAVEPOINT notifications'
        : step === 'release'
          ? 'RELEASE SAVEPOINT notifications'
          : 'ROLLBACK TO SAVEPOINT notifications',
    );
  },

  settingsOf: async (q: Queryable, userId: string): Promise<SettingsRow | undefined> =>
    (
      await q.query<SettingsRow>(
        `SELECT s.*, u.email AS account_email FROM users u LEFT JOIN notification_settings s ON s.user_id = u.id WHERE u.id = $1`,
        [userId],
      )
    ).rows[0],

  async saveSettings(
    q: Queryable,
    s: {
      userId: string;
      emailEnabled: boolean;
      smsEnabled: boolean;
      email: string | null;
      phone: string | null;
      quietStartMin: number | null;
      quietEndMin: number | null;
      criticalOverridesQuiet: boolean;
      summary: SettingsRow['summary'];
    },
  ): Promise<void> {
    await q.query(
      `INSERT INTO notification_settings (user_id, email_enabled, sms_enabled, email, phone, quiet_start_min, quiet_end_min, critical_overrides_quiet, summary, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now())
       ON CONFLICT (user_id) DO UPDATE SET email_enabled = excluded.email_enabled, sms_enabled = excluded.sms_enabled,
         email = excluded.email, phone = excluded.phone, quiet_start_min = excluded.quiet_start_min,
         quiet_end_min = excluded.quiet_end_min, critical_overrides_quiet = excluded.critical_overrides_quiet,
         summary = excluded.summary, updated_at = now()`,
      [
        s.userId,
        s.emailEnabled,
        s.smsEnabled,
        s.email,
        s.phone,
        s.quietStartMin,
        s.quietEndMin,
        s.criticalOverridesQuiet,
        s.summary,
      ],
    );
  },

  /** Recent notifications, newest first: one user's, or (undefined) every one the scope shows. */
  deliveries: async (q: Queryable, userId: string | undefined, limit: number) =>
    (
      await q.query<{
        at: Date;
        channel: 'email' | 'sms';
        kind: string;
        event: string;
        subject: string | null;
        attempts: number;
        error: string | null;
        status: 'delivered' | 'pending' | 'failed';
      }>(
        `SELECT created_at AS at, channel, kind, event, subject, attempts, last_error AS error,
           CASE WHEN delivered_at IS NOT NULL THEN 'delivered' WHEN failed_at IS NOT NULL THEN 'failed' ELSE 'pending' END AS status
         FROM notification_outbox WHERE ($1::uuid IS NULL OR user_id = $1) ORDER BY created_at DESC, id DESC LIMIT $2`,
        [userId ?? null, limit],
      )
    ).rows,

  /** A summary's figures per unit in the user's scope (the rule of row-level security), over [from, to). */
  summaryOf: async (q: Queryable, userId: string, from: Date, to: Date): Promise<UnitSummary[]> =>
    (
      await q.query<UnitSummary>(
        `SELECT un.name AS "unitName", si.name AS "siteName",
       (SELECT coalesce(round((sum(hr.flow * hr.minutes) / 1000)::numeric, 2), 0)::float8 FROM (
          SELECT avg(r.gas_flow_lpm) AS flow,
                 -- The part of the hour inside the period: all 60 minutes, except where a local
                 -- midnight of a +5:30 zone cuts the hour (the rest is the next day's).
                 extract(epoch FROM least(date_trunc('hour', r.ts) + interval '1 hour', $3::timestamptz)
                                    - greatest(date_trunc('hour', r.ts), $2::timestamptz)) / 60 AS minutes
          FROM readings r
          WHERE r.unit_id = un.id AND r.ts >= $2 AND r.ts < $3 AND r.gas_flow_lpm IS NOT NULL
          GROUP BY date_trunc('hour', r.ts)) hr) AS "gasM3",
       (SELECT count(DISTINCT date_trunc('hour', r.ts))::int FROM readings r WHERE r.unit_id = un.id AND r.ts >= $2 AND r.ts < $3) AS "hoursWithData",
       (SELECT count(*)::int FROM alerts a WHERE a.unit_id = un.id AND a.opened_at >= $2 AND a.opened_at < $3) AS opened,
       (SELECT count(*)::int FROM alerts a WHERE a.unit_id = un.id AND a.opened_at >= $2 AND a.opened_at < $3 AND a.severity = 'critical') AS critical,
       (SELECT count(*)::int FROM alerts a WHERE a.unit_id = un.id AND a.status = 'open') AS "openNow"
     FROM units un JOIN sites si ON si.id = un.site_id JOIN users u ON u.id = $1
     WHERE u.role IN ('admin', 'technician') OR EXISTS (
       SELECT 1 FROM user_unit_assignments a WHERE a.user_id = u.id AND a.unit_id = un.id
         AND ((u.role = 'kitchen_manager' AND un.kind = 'biodigester') OR (u.role = 'collector' AND un.kind = 'collection_point')))
     ORDER BY si.name, un.name`,
        [userId, from, to],
      )
    ).rows,
};
