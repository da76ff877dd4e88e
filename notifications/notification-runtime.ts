import type pg from 'pg';
import type { Logger } from 'pino';
import type { Config } from '../config/index.ts';
import type { NotificationChannel } from './channel-types.ts';
import { createEmailChannel } from './email-channel.ts';
import type { Channel } from './notification-fns.ts';
import { createNotificationOutbox } from './notification-outbox.ts';
import { startNotificationRetention } from './notification-retention.ts';
import { createNotificationSender } from './notification-sender.ts';
import { createSummaryScheduler } from './notification-summary.ts';
import { createAfricasTalkingSms } from './sms-africastalking.ts';

/**
 * Notifications as the gateway runs them: the channels its configuration names (none: the
 * outbox queues nothing and no sender runs), the outbox the alert evaluator writes to, the
 * sender, and the summary scheduler (with email only).
 */
export function createNotifications(deps: {
  config: Config['notifications'];
  timeZone: string;
  /** https://host:port of the dashboards (links in messages). */
  baseUrl: string;
  publicHostname: string;
  pool: pg.Pool;
  logger: Logger;
}) {
  const c = deps.config;
  const channels: Partial<Record<Channel, NotificationChannel>> = {};
  if (c.smtpUrl && c.emailFrom)
    channels.email = createEmailChannel({
      url: c.smtpUrl,
      from: c.emailFrom,
      messageIdDomain: deps.publicHostname,
    });
  if (c.africasTalking)
    channels.sms = createAfricasTalkingSms({
      username: c.africasTalking.username,
      apiKey: c.africasTalking.apiKey,
      from: c.africasTalking.senderId,
      baseUrl: c.africasTalking.baseUrl,
    });
  const configured = new Set((Object.keys(channels) as Channel[]).filter((k) => channels[k]));
  const sender =
    configured.size > 0
      ? createNotificationSender({
          pool: deps.pool,
          logger: deps.logger,
          channels,
          maxAttempts: c.maxAttempts,
        })
      : undefined;
  const outbox = createNotificationOutbox({
    logger: deps.logger,
    channels: configured,
    timeZone: deps.timeZone,
    baseUrl: deps.baseUrl,
    onQueued: () => sender?.kick(),
  });
  const stopSummaries = channels.email
    ? createSummaryScheduler({
        pool: deps.pool,
        logger: deps.logger,
        timeZone: deps.timeZone,
        hour: c.summaryHour,
        weekday: c.summaryWeekday,
        baseUrl: deps.baseUrl,
        onQueued: () => sender?.kick(),
      }).start()
    : undefined;
  // With or without channels: what an earlier configuration queued is personal data too.
  const stopRetention = startNotificationRetention({
    pool: deps.pool,
    retentionDays: c.retentionDays,
    logger: deps.logger,
  });
  // What is on, never how (the SMTP URL and the API key are secrets).
  deps.logger.info(
    { channels: [...configured], summaries: Boolean(stopSummaries) },
    'notifications',
  );
  return {
    outbox,
    async stop(): Promise<void> {
      stopRetention();
      stopSummaries?.();
      await sender?.stop();
    },
  };
}
