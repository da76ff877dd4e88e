import createError from '@fastify/error';

/** Notification settings errors; the API's error handler turns them into coded JSON. */
export const NotificationErrors = {
  InvalidPhone: createError(
    'NOTIFY_INVALID_PHONE',
    'Not a Kenyan mobile number: give it as +2547XXXXXXXX or +2541XXXXXXXX (or 07XXXXXXXX)',
    400,
  ),
  InvalidEmail: createError('NOTIFY_INVALID_EMAIL', 'Not an email address', 400),
  AddressMissing: createError(
    'NOTIFY_ADDRESS_MISSING',
    '%s is switched on without an address to send to',
    400,
  ),
  QuietHoursInvalid: createError(
    'NOTIFY_QUIET_HOURS_INVALID',
    'Quiet hours need both a start and an end (HH:MM)',
    400,
  ),
  NotAUser: createError(
    'NOTIFY_NOT_A_USER',
    'Notification settings belong to a person: sign in to change yours (an API token has none)',
    400,
  ),
};
