/** Alert notifications to people (email, SMS), their settings, and the daily/weekly summary. */
export { createEmailChannel } from './email-channel.ts';
export { createAfricasTalkingSms } from './sms-africastalking.ts';
export type { NotificationChannel, SendResult } from './channel-types.ts';
export { createNotificationOutbox, type NotificationOutbox } from './notification-outbox.ts';
export { createNotificationSender, type NotificationSender } from './notification-sender.ts';
export { NotificationErrors } from './notification-errors.ts';
