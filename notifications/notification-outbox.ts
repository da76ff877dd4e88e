import type { Logger } from 'pino';
import { alertValue } from '../dashboards/alert-pages.ts';
import { translator } from '../i18n/index.ts';
import type { Queryable } from '../db/timeseries.ts';
import {
  alertKey,
  channelCarries,
  renderAlert,
  sendAfter,
  userLanguage,
  type AlertEvent,
  type Channel,
  type Severity,
} from './notification-fns.ts';
import { notificationRepo, type OutboxInsert, type Recipient } from './notification-repo.ts';

/** An alert's transition, as the evaluator (dashboards/alert-service.ts) hands it over. */
export interface AlertTransition {
  alertId: number;
  ruleId: string;
  title: string;
  severity: Severity;
  event: AlertEvent;
  deviceId: string;
  unitId: string;
  value: number;
  at: Date;
}

/**
 * Turns an alert's transition into notifications in the outbox, inside the alert's own
 * transaction: the alert and its notifications commit together, or neither does. Each goes to
 * the users whose scope covers the alert's unit and who chose that channel, in their language,
 * after their quiet hours. A savepoint keeps a failure here (a bad row, a missing table during
 * a rolling upgrade) from undoing the alert itself: the evaluator goes on, the error is logged.
 */
export function createNotificationOutbox(deps: {
  logger: Logger;
  /** The channels configured (config NOTIFY_*, AT_*): nothing is queued for one that is not. */
  channels: ReadonlySet<Channel>;
  timeZone: string;
  /** https://host:port of the dashboards, for links. */
  baseUrl: string;
  /** Told after commit that there is something to send. */
  onQueued?: () => void;
}) {
  function messagesFor(
    t: AlertTransition,
    r: Recipient,
    facts: { kind: string; unitName: string; siteName: string },
    metric: string | null,
  ): OutboxInsert[] {
    const lang = userLanguage(r);
    const out: OutboxInsert[] = [];
    const wanted: [Channel, boolean, string | null][] = [
      ['email', r.emailEnabled, r.email],
      ['sms', r.smsEnabled, r.phone],
    ];
    for (const [channel, enabled, address] of wanted) {
      if (!enabled || !address || !deps.channels.has(channel) || !channelCarries(channel, t.event))
        continue;
      const { subject, body } = renderAlert(
        {
          ...t,
          unitKind: facts.kind,
          unitName: facts.unitName,
          siteName: facts.siteName,
          value: alertValue({ ruleId: t.ruleId, metric, openValue: t.value }, translator(lang)),
        },
        { lang, role: r.role, channel, baseUrl: deps.baseUrl },
      );
      const quiet =
        r.quietStartMin != null && r.quietEndMin != null
          ? { startMin: r.quietStartMin, endMin: r.quietEndMin }
          : undefined;
      out.push({
        key: alertKey(t.alertId, t.event, t.severity, r.userId, channel),
        userId: r.userId,
        channel,
        kind: 'alert',
        alertId: t.alertId,
        event: t.event,
        address,
        subject: channel === 'email' ? subject : null,
        body,
        lang,
        notBefore: sendAfter(
          t.at,
          { quiet, criticalOverridesQuiet: r.criticalOverridesQuiet },
          t.severity,
          deps.timeZone,
        ),
      });
    }
    return out;
  }

  return {
    /** Queues the notifications of one transition on `q` (the alert's transaction). */
    async enqueue(q: Queryable, t: AlertTransition): Promise<number> {
      if (deps.channels.size === 0) return 0;
      await notificationRepo.savepoint(q, 'begin');
      try {
        const facts = await notificationRepo.unitFacts(q, t.unitId);
        if (!facts) return 0;
        const metric = await notificationRepo.ruleMetric(q, t.ruleId);
        const rows = (await notificationRepo.recipientsFor(q, t.unitId)).flatMap((r) =>
          messagesFor(t, r, facts, metric),
        );
        const n = await notificationRepo.enqueue(q, rows);
        await notificationRepo.savepoint(q, 'release');
        return n;
      } catch (err) {
        await notificationRepo.savepoint(q, 'rollback');
        deps.logger.error({ err, alert: t.alertId }, 'could not queue notifications for an alert');
        return 0;
      }
    },
    /** After the alert's commit: wake the sender. */
    queued(): void {
      deps.onQueued?.();
    },
  };
}

export type NotificationOutbox = ReturnType<typeof createNotificationOutbox>;
