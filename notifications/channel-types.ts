/** What a channel reports for one message: sent (with the provider's id) or why not. */
export type SendResult =
  | { ok: true; providerId: string }
  /** `permanent`: sending again cannot help (an invalid number, a mailbox that does not exist). */
  | { ok: false; permanent: boolean; error: string };

export interface OutgoingMessage {
  /** The outbox row's idempotency key: the same notification always carries the same id. */
  key: string;
  to: string;
  subject: string | null;
  body: string;
  lang: string;
}

/** A way to reach a person. Implementations never throw for a refusal; they return it. */
export interface NotificationChannel {
  send(message: OutgoingMessage): Promise<SendResult>;
  close?(): void;
}
