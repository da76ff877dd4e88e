import type { AuditActor, AuditLog } from '../audit/index.ts';
import type { Db } from '../db/client.ts';
import { asQueryable } from '../db/scoped.ts';
import { NotificationErrors } from './notification-errors.ts';
import { normaliseEmail, normalisePhone } from './notification-fns.ts';

/**
 * A user's own notification settings and recent deliveries, read and written in the caller's
 * verified scope (row-level security: only their own row, migration 0024). Every change is
 * audited in the same transaction (the database refuses it otherwise); the entry records what
 * was chosen and whether an address is set, not the address itself (personal data stays out of
 * the append-only log).
 */

export interface NotificationSettings {
  email: { enabled: boolean; address: string | null };
  sms: { enabled: boolean; phone: string | null };
  /** "HH:MM" in the configured zone; both null for none. */
  quietHours: { start: string; end: string } | null;
  criticalOverridesQuiet: boolean;
  summary: 'none' | 'daily' | 'weekly';
}

export interface Delivery {
  at: string;
  channel: 'email' | 'sms';
  kind: string;
  event: string;
  subject: string | null;
  status: 'delivered' | 'pending' | 'failed';
  attempts: number;
  error: string | null;
}

const hhmm = (min: number | null): string | null =>
  min == null
    ? null
    : `${String(Math.floor(min / 60)).padStart(2, '0')}:${String(min % 60).padStart(2, '0')}`;
const minutes = (v: string): number => Number(v.slice(0, 2)) * 60 + Number(v.slice(3, 5));

export const HHMM = /^([01]\d|2[0-3]):[0-5]\d$/;

interface Row {
  email_enabled: boolean;
  sms_enabled: boolean;
  email: string | null;
  phone: string | null;
  quiet_start_min: number | null;
  quiet_end_min: number | null;
  critical_overrides_quiet: boolean;
  summary: NotificationSettings['summary'];
  account_email: string | null;
}

function toSettings(r: Row | undefined, accountEmail: string | null): NotificationSettings {
  return {
    email: { enabled: r?.email_enabled ?? false, address: r?.email ?? accountEmail },
    sms: { enabled: r?.sms_enabled ?? false, phone: r?.phone ?? null },
    quietHours:
      r?.quiet_start_min != null && r.quiet_end_min != null
        ? { start: hhmm(r.quiet_start_min)!, end: hhmm(r.quiet_end_min)! }
        : null,
    criticalOverridesQuiet: r?.critical_overrides_quiet ?? true,
    summary: r?.summary ?? 'none',
  };
}

export function createSettingsService(deps: { db: Db; audit: AuditLog }) {
  const q = asQueryable(deps.db);
  async function read(userId: string): Promise<NotificationSettings> {
    const { rows } = await q.query<Row>(
      `SELECT s.*, u.email AS account_email FROM users u LEFT JOIN notification_settings s ON s.user_id = u.id WHERE u.id = $1`,
      [userId],
    );
    return toSettings(rows[0], rows[0]?.account_email ?? null);
  }
  return {
    read,

    /** Validates and stores the caller's settings; returns what is now stored. */
    async update(
      userId: string,
      input: NotificationSettings,
      actor: AuditActor,
    ): Promise<NotificationSettings> {
      const address = input.email.address?.trim() ? normaliseEmail(input.email.address) : null;
      if (address === undefined) throw new NotificationErrors.InvalidEmail();
      const phone = input.sms.phone?.trim() ? normalisePhone(input.sms.phone) : null;
      if (phone === undefined) throw new NotificationErrors.InvalidPhone();
      if (input.email.enabled && !address) throw new NotificationErrors.AddressMissing('Email');
      if (input.sms.enabled && !phone) throw new NotificationErrors.AddressMissing('SMS');
      if (
        input.quietHours &&
        (!HHMM.test(input.quietHours.start) || !HHMM.test(input.quietHours.end))
      )
        throw new NotificationErrors.QuietHoursInvalid();
      const before = await read(userId);
      await q.query(
        `INSERT INTO notification_settings (user_id, email_enabled, sms_enabled, email, phone, quiet_start_min, quiet_end_min, critical_overrides_quiet, summary, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now())
         ON CONFLICT (user_id) DO UPDATE SET email_enabled = excluded.email_enabled, sms_enabled = excluded.sms_enabled,
           email = excluded.email, phone = excluded.phone, quiet_start_min = excluded.quiet_start_min,
           quiet_end_min = excluded.quiet_end_min, critical_overrides_quiet = excluded.critical_overrides_quiet,
           summary = excluded.summary, updated_at = now()`,
        [
          userId,
          input.email.enabled,
          input.sms.enabled,
          address,
          phone,
          input.quietHours ? minutes(input.quietHours.start) : null,
          input.quietHours ? minutes(input.quietHours.end) : null,
          input.criticalOverridesQuiet,
          input.summary,
        ],
      );
      const after = await read(userId);
      const redact = (s: NotificationSettings) => ({
        email: { enabled: s.email.enabled, addressSet: s.email.address !== null },
        sms: { enabled: s.sms.enabled, phoneSet: s.sms.phone !== null },
        quietHours: s.quietHours,
        criticalOverridesQuiet: s.criticalOverridesQuiet,
        summary: s.summary,
      });
      await deps.audit.record(
        {
          ...actor,
          action: 'notifications.settings_update',
          targetType: 'user',
          targetId: userId,
          before: redact(before),
          after: redact(after),
        },
        deps.db,
      );
      return after;
    },

    /** The caller's most recent notifications (an admin's or technician's: everyone's, by RLS). */
    async deliveries(userId: string | undefined, limit = 20): Promise<Delivery[]> {
      const { rows } = await q.query<Delivery>(
        `SELECT created_at AS at, channel, kind, event, subject, attempts, last_error AS error,
           CASE WHEN delivered_at IS NOT NULL THEN 'delivered' WHEN failed_at IS NOT NULL THEN 'failed' ELSE 'pending' END AS status
         FROM notification_outbox WHERE ($1::uuid IS NULL OR user_id = $1) ORDER BY created_at DESC, id DESC LIMIT $2`,
        [userId ?? null, limit],
      );
      return rows.map((r) => ({ ...r, at: new Date(r.at).toISOString() }));
    },
  };
}

export type SettingsService = ReturnType<typeof createSettingsService>;
