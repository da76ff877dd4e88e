import createError from '@fastify/error';
import { DeviceErrors } from '../devices/device-errors.ts';

/**
 * Field record errors (feedings, collections). A unit that does not exist for the caller is the
 * registry's UNIT_NOT_FOUND (one code, one meaning: api/error-codes.test.ts).
 */
export const FieldErrors = {
  UnitNotFound: DeviceErrors.UnitNotFound,
  FeedingNotFound: createError('FEEDING_NOT_FOUND', 'Feeding %s not found', 404),
  /** Not the caller's own entry, already voided, or past the correction window. */
  FeedingLocked: createError('FEEDING_LOCKED', 'Feeding %s cannot be changed: %s', 409),
  TimeInvalid: createError('FIELD_TIME_INVALID', '%s', 400),
};
