import type pg from 'pg';
import type { Logger } from 'pino';
import { translator } from '../i18n/index.ts';
import { sendAfter, SETTINGS_PATH, userLanguage } from './notification-fns.ts';
import { notificationRepo, type Recipient, type UnitSummary } from './notification-repo.ts';

/**
 * The daily or weekly summary by email, per user who asked for one: for each unit in their
 * scope, the gas produced (each hour with flow data counts as its mean L/min × 60, as the
 * digester page's daily gas does), how many hours the unit's sensors reported (of the
 * period's hours), and the alerts opened (critical among them) and still open. Queued once per
 * user and period (idempotency key) at the configured local hour or the first tick after it;
 * the daily covers the previous local day, the weekly the seven days before the configured weekday.
 */

interface LocalNow {
  ymd: string;
  hour: number;
  /** ISO weekday, 1 = Monday. */
  weekday: number;
}

function localNow(at: Date, timeZone: string): LocalNow {
  const parts = new Intl.DateTimeFormat('en-GB', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    hourCycle: 'h23',
    weekday: 'short',
  }).formatToParts(at);
  const get = (t: string): string => parts.find((p) => p.type === t)?.value ?? '';
  const weekdays = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
  return {
    ymd: `${get('year')}-${get('month')}-${get('day')}`,
    hour: Number(get('hour')),
    weekday: weekdays.indexOf(get('weekday')) + 1,
  };
}

/** The instant a local calendar day starts in `timeZone` (offset read back from Intl, checked twice). */
export function localMidnight(ymd: string, timeZone: string): Date {
  const utc = Date.parse(`${ymd}T00:00:00Z`);
  let t = utc;
  for (let i = 0; i < 2; i++) {
    const p = new Intl.DateTimeFormat('en-GB', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    }).formatToParts(new Date(t));
    const g = (k: string) => p.find((x) => x.type === k)?.value ?? '0';
    const asUtc = Date.UTC(+g('year'), +g('month') - 1, +g('day'), +g('hour'), +g('minute'));
    t -= asUtc - utc;
  }
  return new Date(t);
}

const shiftDays = (ymd: string, days: number): string =>
  new Date(Date.parse(`${ymd}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);

export function renderSummary(
  units: readonly UnitSummary[],
  r: {
    lang: 'en' | 'sw';
    kind: 'daily' | 'weekly';
    period: string;
    hours: number;
    baseUrl: string;
  },
): { subject: string; body: string } {
  const t = translator(r.lang);
  const subject = t(
    r.kind === 'daily' ? 'notify.summary.subject.daily' : 'notify.summary.subject.weekly',
    { period: r.period },
  );
  const lines = [t('notify.summary.intro', { period: r.period }), ''];
  if (units.length === 0) lines.push(t('notify.summary.none'));
  for (const u of units)
    lines.push(
      t('notify.summary.unit', { unit: u.unitName, site: u.siteName }),
      `  ${t('notify.summary.gas', { m3: u.gasM3 })}`,
      `  ${t('notify.summary.uptime', { pct: Math.round((100 * u.hoursWithData) / r.hours) })}`,
      `  ${t('notify.summary.alerts', { opened: u.opened, critical: u.critical, open: u.openNow })}`,
      '',
    );
  lines.push(t('notify.body.footer', { url: `${r.baseUrl}${SETTINGS_PATH}` }));
  return { subject, body: lines.join('\n') };
}

export function createSummaryScheduler(deps: {
  pool: pg.Pool;
  logger: Logger;
  timeZone: string;
  /** Local hour (0–23) at or after which the summary is queued. */
  hour: number;
  /** ISO weekday (1 = Monday) of the weekly summary. */
  weekday: number;
  baseUrl: string;
  now?: () => Date;
  onQueued?: () => void;
}) {
  const now = deps.now ?? (() => new Date());

  async function forUser(r: Recipient, at: Date, local: LocalNow): Promise<boolean> {
    if (!r.email || (r.summary === 'weekly' && local.weekday !== deps.weekday)) return false;
    const days = r.summary === 'weekly' ? 7 : 1;
    const first = shiftDays(local.ymd, -days);
    const key = `summary:${r.summary}:${first}:${r.userId}:email`;
    if (await notificationRepo.exists(deps.pool, key)) return false;
    const from = localMidnight(first, deps.timeZone);
    const to = localMidnight(local.ymd, deps.timeZone);
    const units = await notificationRepo.summaryOf(deps.pool, r.userId, from, to);
    const lang = userLanguage(r);
    const period = days === 1 ? first : `${first} – ${shiftDays(local.ymd, -1)}`;
    const hours = Math.round((to.getTime() - from.getTime()) / 3_600_000);
    const { subject, body } = renderSummary(units, {
      lang,
      kind: r.summary === 'weekly' ? 'weekly' : 'daily',
      period,
      hours,
      baseUrl: deps.baseUrl,
    });
    const quiet =
      r.quietStartMin != null && r.quietEndMin != null
        ? { startMin: r.quietStartMin, endMin: r.quietEndMin }
        : undefined;
    const added = await notificationRepo.enqueue(deps.pool, [
      {
        key,
        userId: r.userId,
        channel: 'email',
        kind: 'summary',
        alertId: null,
        event: r.summary,
        address: r.email,
        subject,
        body,
        lang,
        notBefore: sendAfter(
          at,
          { quiet, criticalOverridesQuiet: false },
          'warning',
          deps.timeZone,
        ),
      },
    ]);
    return added > 0;
  }

  return {
    /** Queues the summaries due now; returns how many. Safe to run from every process. */
    async tick(): Promise<number> {
      const at = now();
      const local = localNow(at, deps.timeZone);
      if (local.hour < deps.hour) return 0;
      let queued = 0;
      for (const r of await notificationRepo.summaryRecipients(deps.pool)) {
        try {
          if (await forUser(r, at, local)) queued++;
        } catch (err) {
          deps.logger.error({ err, user: r.userId }, 'could not queue a summary');
        }
      }
      if (queued > 0) deps.onQueued?.();
      return queued;
    },
    /** Ticks every `everyMs`; returns the stop function. */
    start(everyMs = 5 * 60_000): () => void {
      const timer = setInterval(
        () =>
          void this.tick().catch((err: unknown) =>
            deps.logger.error({ err }, 'summary tick failed'),
          ),
        everyMs,
      );
      timer.unref();
      return () => clearInterval(timer);
    },
  };
}
