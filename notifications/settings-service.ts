import type { AuditActor, AuditLog } from '../audit/index.ts';
import type { Db } from '../db/client.ts';
import { asQueryable } from '../db/scoped.ts';
import { NotificationErrors } from './notification-errors.ts';
import { normaliseEmail, normalisePhone } from './notification-fns.ts';
import { notificationRepo, type SettingsRow } from './notification-repo.ts';

/**
 * A user's own notification settings and recent deliveries, read and written in the caller's
 * verified scope (row-level security: only their own row, migration 0030). Every change is
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

function toSettings(r: SettingsRow | undefined, accountEmail: string | null): NotificationSettings {
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
    const row = await notificationRepo.settingsOf(q, userId);
    return toSettings(row, row?.account_email ?? null);
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
      await notificationRepo.saveSettings(q, {
        userId,
        emailEnabled: input.email.enabled,
        smsEnabled: input.sms.enabled,
        email: address,
        phone,
        quietStartMin: input.quietHours ? minutes(input.quietHours.start) : null,
        quietEndMin: input.quietHours ? minutes(input.quietHours.end) : null,
        criticalOverridesQuiet: input.criticalOverridesQuiet,
        summary: input.summary,
      });
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
      const rows = await notificationRepo.deliveries(q, userId, limit);
      return rows.map((r) => ({ ...r, at: new Date(r.at).toISOString() }));
    },
  };
}

export type SettingsService = ReturnType<typeof createSettingsService>;
