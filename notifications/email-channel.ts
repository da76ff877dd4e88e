import { createHash } from 'node:crypto';
import { createTransport } from 'nodemailer';
import type { NotificationChannel, OutgoingMessage, SendResult } from './channel-types.ts';

/**
 * Email over SMTP (nodemailer). NOTIFY_SMTP_URL is `smtp://user:pass@host:587` (STARTTLS when the
 * server offers it) or `smtps://…:465`; it carries a password, so it is never logged. Each
 * message's Message-ID is derived from the outbox key, so a notification sent twice (a crash
 * after the server accepted it, before the outbox recorded it) is the same message to a client
 * that deduplicates on it (RFC 5322 §3.6.4).
 */
export function createEmailChannel(deps: {
  url: string;
  from: string;
  /** The domain of Message-IDs (the public host name). */
  messageIdDomain: string;
  timeoutMs?: number;
}): NotificationChannel {
  const timeout = deps.timeoutMs ?? 20_000;
  const transport = createTransport(deps.url, {
    from: deps.from,
  });
  // The URL's own options (pooling, TLS) stay; timeouts bound a stuck server.
  Object.assign(transport.options, {
    connectionTimeout: timeout,
    greetingTimeout: timeout,
    socketTimeout: timeout,
  });
  return {
    async send(m: OutgoingMessage): Promise<SendResult> {
      const id = createHash('sha256').update(m.key).digest('hex').slice(0, 32);
      try {
        const info = await transport.sendMail({
          to: m.to,
          subject: m.subject ?? '',
          text: m.body,
          messageId: `<${id}@${deps.messageIdDomain}>`,
          headers: { 'Content-Language': m.lang, 'Auto-Submitted': 'auto-generated' },
        });
        if (info.rejected.length > 0)
          return { ok: false, permanent: true, error: `recipient refused: ${info.response}` };
        return { ok: true, providerId: info.messageId };
      } catch (err) {
        const e = err as Error & { responseCode?: number; command?: string; code?: string };
        // A 5xx to RCPT TO is about this recipient (RFC 5321 §4.2.1): sending again cannot help.
        // Anything else (connection, authentication, a 4xx) may pass later.
        const permanent =
          e.command === 'RCPT TO' && e.responseCode !== undefined && e.responseCode >= 500;
        return {
          ok: false,
          permanent,
          error:
            `${e.code ?? e.name}${e.responseCode ? ` ${e.responseCode}` : ''}: ${e.message}`.slice(
              0,
              500,
            ),
        };
      }
    },
    close: () => transport.close(),
  };
}
