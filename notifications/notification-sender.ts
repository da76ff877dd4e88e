import type pg from 'pg';
import type { Logger } from 'pino';
import type { NotificationChannel } from './channel-types.ts';
import { backoffSeconds, type Channel } from './notification-fns.ts';
import { notificationRepo, type OutboxRow } from './notification-repo.ts';

/**
 * Delivers the notification outbox. Each due row is leased (claimed in a short transaction,
 * its next attempt moved past the lease) and then sent outside any transaction, so a slow or
 * dead provider holds no lock and no connection, and never touches alert evaluation. Success
 * marks the row delivered; a permanent refusal or `maxAttempts` failures marks it failed, with
 * the reason kept on the row (visible on the settings page and GET /notifications/deliveries);
 * anything else is tried again after a backoff (30 s doubling, capped at an hour).
 * At least once: a sender that dies after the provider accepted a message, before recording it,
 * sends it again when the lease ends (the email keeps its Message-ID).
 */
export function createNotificationSender(deps: {
  pool: pg.Pool;
  logger: Logger;
  channels: Partial<Record<Channel, NotificationChannel>>;
  maxAttempts?: number;
  pollMs?: number;
  batch?: number;
  /** Longer than any send may take (the channels' own timeouts are 15–20 s). */
  leaseS?: number;
  now?: () => Date;
}) {
  const now = deps.now ?? (() => new Date());
  const maxAttempts = deps.maxAttempts ?? 12;
  const configured = (Object.keys(deps.channels) as Channel[]).filter((c) => deps.channels[c]);
  let running: Promise<void> | undefined;
  let again = false;
  let stopped = false;

  async function deliver(row: OutboxRow): Promise<void> {
    const channel = deps.channels[row.channel];
    const result = channel
      ? await channel.send({
          key: row.key,
          to: row.address,
          subject: row.subject,
          body: row.body,
          lang: row.lang,
        })
      : { ok: false as const, permanent: false, error: `channel ${row.channel} is not configured` };
    if (result.ok) {
      await notificationRepo.delivered(deps.pool, row.id, result.providerId, now());
      return;
    }
    const giveUp = result.permanent || row.attempts >= maxAttempts;
    await notificationRepo.failed(deps.pool, row.id, {
      error: result.error,
      giveUp,
      retryS: backoffSeconds(row.attempts),
      now: now(),
    });
    // The address is personal data: the log names the row, not the person.
    deps.logger[giveUp ? 'error' : 'warn'](
      { notification: row.id, channel: row.channel, attempts: row.attempts, error: result.error },
      giveUp ? 'notification gave up' : 'notification failed; will retry',
    );
  }

  async function pass(): Promise<void> {
    for (;;) {
      const rows = await notificationRepo.claim(
        deps.pool,
        configured,
        now(),
        deps.batch ?? 20,
        deps.leaseS ?? 120,
      );
      if (rows.length === 0) return;
      // One at a time per channel would be gentler on a provider; a small batch in parallel
      // keeps one slow SMTP server from holding up the SMS behind it.
      await Promise.all(rows.map((r) => deliver(r)));
      if (stopped) return;
    }
  }

  function kick(): void {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = pass()
      .catch((err: unknown) => deps.logger.warn({ err }, 'notification pass failed'))
      .finally(() => {
        running = undefined;
        if (again) {
          again = false;
          kick();
        }
      });
  }

  const timer = setInterval(kick, deps.pollMs ?? 10_000);
  timer.unref();
  kick();
  return {
    kick,
    /** Resolves when the current pass (if any) is done (tests, shutdown). */
    idle: async (): Promise<void> => {
      while (running) await running;
    },
    async stop(): Promise<void> {
      stopped = true;
      clearInterval(timer);
      await running;
      for (const c of Object.values(deps.channels)) c?.close?.();
    },
  };
}

export type NotificationSender = ReturnType<typeof createNotificationSender>;
