import { z } from 'zod';
import { alertTitle, guidanceFor } from '../dashboards/alert-pages.ts';
import { isLang, translator, type Lang } from '../i18n/index.ts';

/**
 * Pure logic of notifications: what an address must look like, when quiet hours end, who may be
 * told about a unit, what a message says. No I/O: the repo, sender and channels do that.
 */

export type Channel = 'email' | 'sms';
export type Severity = 'warning' | 'critical';
export type AlertEvent = 'opened' | 'escalated' | 'closed';

/**
 * A Kenyan mobile number in E.164 (ITU-T E.164; Kenya's country code 254, then the 9-digit
 * national significant number without its trunk 0: 7xx xxx xxx or 1xx xxx xxx). People write
 * it with spaces or dashes, or nationally (07…); those are normalised, anything else refused.
 */
export function normalisePhone(input: string): string | undefined {
  const compact = input.trim().replace(/[\s().-]/g, '');
  const e164 = /^0[17]\d{8}$/.test(compact)
    ? `+254${compact.slice(1)}`
    : /^254[17]\d{8}$/.test(compact)
      ? `+${compact}`
      : compact;
  return /^\+254[17]\d{8}$/.test(e164) ? e164 : undefined;
}

const emailSchema = z.email();

/** An address nodemailer and an SMTP server accept (zod's email shape), trimmed, at most 254 octets (RFC 5321 §4.5.3.1.3). */
export function normaliseEmail(input: string): string | undefined {
  const v = input.trim();
  return v.length <= 254 && emailSchema.safeParse(v).success ? v : undefined;
}

const minuteFormats = new Map<string, Intl.DateTimeFormat>();

/** Minutes since local midnight of `at` in `timeZone`. */
export function localMinute(at: Date, timeZone: string): number {
  let f = minuteFormats.get(timeZone);
  if (!f)
    minuteFormats.set(
      timeZone,
      (f = new Intl.DateTimeFormat('en-GB', {
        timeZone,
        hour: '2-digit',
        minute: '2-digit',
        hourCycle: 'h23',
      })),
    );
  const parts = f.formatToParts(at);
  const get = (t: string): number => Number(parts.find((p) => p.type === t)?.value ?? 0);
  return get('hour') * 60 + get('minute');
}

export interface QuietHours {
  startMin: number;
  endMin: number;
}

/** Whether a local minute is inside [start, end); start > end spans midnight; start = end is none. */
export function inQuiet(minute: number, q: QuietHours): boolean {
  if (q.startMin === q.endMin) return false;
  return q.startMin < q.endMin
    ? minute >= q.startMin && minute < q.endMin
    : minute >= q.startMin || minute < q.endMin;
}

/**
 * When a notification due at `at` may go: `at` itself outside quiet hours, else the first
 * instant the local clock reads the end of quiet hours. Stepping by whole minutes keeps it right
 * across an offset change (zones other than Nairobi's may have one).
 */
export function quietHoursEnd(at: Date, q: QuietHours | undefined, timeZone: string): Date {
  if (!q || !inQuiet(localMinute(at, timeZone), q)) return at;
  // Start of the current minute, then forward minute by minute (at most a day).
  let t = Math.floor(at.getTime() / 60_000) * 60_000;
  for (let i = 0; i <= 1500; i++) {
    t += 60_000;
    if (!inQuiet(localMinute(new Date(t), timeZone), q)) return new Date(t);
  }
  return new Date(t);
}

/** When to send: now, or after quiet hours (unless critical and the user lets critical through). */
export function sendAfter(
  at: Date,
  s: { quiet?: QuietHours | undefined; criticalOverridesQuiet: boolean },
  severity: Severity,
  timeZone: string,
): Date {
  if (severity === 'critical' && s.criticalOverridesQuiet) return at;
  return quietHoursEnd(at, s.quiet, timeZone);
}

export type Role = 'admin' | 'technician' | 'kitchen_manager' | 'collector' | 'auditor';

/**
 * Whether a user's scope covers a unit: the same rule as row-level security
 * (thamani_sees_all, thamani_assigned_units, migrations 0007/0019) — admins and technicians see
 * every unit; a kitchen manager the biodigesters assigned to them; a collector the collection
 * points assigned to them; an auditor none. The repo's recipient query is tested against this.
 */
export function scopeCovers(
  user: { role: Role; units: ReadonlySet<string> },
  unit: { id: string; kind: string },
): boolean {
  switch (user.role) {
    case 'admin':
    case 'technician':
      return true;
    case 'kitchen_manager':
      return unit.kind === 'biodigester' && user.units.has(unit.id);
    case 'collector':
      return unit.kind === 'collection_point' && user.units.has(unit.id);
    default:
      return false;
  }
}

/** Which channels carry which events: SMS (paid, short) only what needs acting on. */
export function channelCarries(channel: Channel, event: AlertEvent): boolean {
  return channel === 'email' || event !== 'closed';
}

/** Retry delay after `attempts` failures: 30 s doubling, capped at an hour. */
export function backoffSeconds(attempts: number): number {
  return Math.min(3600, 30 * 2 ** Math.max(0, attempts - 1));
}

/** The language a user reads; the one place the `users.language` column (i18n) is read. */
export function userLanguage(user: { language?: unknown }): Lang {
  return isLang(user.language) ? user.language : 'en';
}

/** What to do about an alert, in the reader's language: dashboards/alert-pages.ts, the one source. */
export function guidanceText(ruleId: string, lang: Lang): string {
  return guidanceFor(ruleId, translator(lang));
}

export interface AlertFacts {
  alertId: number;
  ruleId: string;
  title: string;
  severity: Severity;
  event: AlertEvent;
  deviceId: string;
  unitId: string;
  unitKind: string;
  unitName: string;
  siteName: string;
  value: string;
}

/** Where the recipient acts: the digester's or collection point's page, or the device for technicians. */
export function alertLink(
  baseUrl: string,
  a: Pick<AlertFacts, 'unitKind' | 'unitId' | 'deviceId'>,
  role: Role,
): string {
  if (role === 'admin' || role === 'technician')
    return `${baseUrl}/fleet/${encodeURIComponent(a.deviceId)}`;
  return a.unitKind === 'biodigester'
    ? `${baseUrl}/digesters/${a.unitId}`
    : `${baseUrl}/collection#unit-${a.unitId}`;
}

export const SETTINGS_PATH = '/settings/notifications';

/** An alert notification in the recipient's language: subject (email) and text. */
export function renderAlert(
  a: AlertFacts,
  r: { lang: Lang; role: Role; channel: Channel; baseUrl: string },
): { subject: string; body: string } {
  const t = translator(r.lang);
  const severity = t(`notify.severity.${a.severity}`);
  const vars = {
    severity,
    title: alertTitle(a, t),
    unit: a.unitName,
    site: a.siteName,
    device: a.deviceId,
    value: a.value,
  };
  const subject = t(`notify.subject.${a.event}`, vars);
  const lines = [
    t(`notify.body.${a.event}`, vars),
    ...(a.event === 'closed'
      ? []
      : [t('notify.body.todo', { guidance: guidanceText(a.ruleId, r.lang) })]),
    t('notify.body.open', { url: alertLink(r.baseUrl, a, r.role) }),
  ];
  if (r.channel === 'sms') return { subject, body: `${subject}. ${lines.slice(1).join(' ')}` };
  lines.push('', t('notify.body.footer', { url: `${r.baseUrl}${SETTINGS_PATH}` }));
  return { subject, body: lines.join('\n') };
}

/** The idempotency key of an alert notification: one per alert, user, channel and event. */
export function alertKey(
  alertId: number,
  event: AlertEvent,
  severity: Severity,
  userId: string,
  channel: Channel,
): string {
  // An alert may escalate once per severity; its key names the severity it reached.
  return `alert:${alertId}:${event === 'escalated' ? `escalated-${severity}` : event}:${userId}:${channel}`;
}
