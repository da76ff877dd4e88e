import createError from '@fastify/error';
import { DeviceErrors } from '../devices/device-errors.ts';
import { QuarantineErrors } from '../ingest/quarantine-service.ts';

/**
 * Dashboard and alert errors; the API's error handler turns them into coded JSON (or a page).
 * A unit or device that does not exist (or is not the caller's) is the registry's own error:
 * one code, one meaning, whichever feature reports it (api/error-codes.test.ts).
 */
export const DashboardErrors = {
  UnitNotFound: DeviceErrors.UnitNotFound,
  DeviceNotFound: DeviceErrors.DeviceNotFound,
  AlertNotFound: createError('ALERT_NOT_FOUND', 'Alert %s not found', 404),
  AlreadyAcknowledged: createError(
    'ALERT_ALREADY_ACKNOWLEDGED',
    'Alert %s was already acknowledged by %s',
    409,
  ),
  RuleNotFound: createError('ALERT_RULE_NOT_FOUND', 'Alert rule %s not found', 404),
  RuleInvalid: createError('ALERT_RULE_INVALID', '%s', 400),
  OverrideNotFound: createError(
    'ALERT_RULE_OVERRIDE_NOT_FOUND',
    'Alert rule %s has no override for unit %s',
    404,
  ),
  QuarantineItemNotFound: QuarantineErrors.NotFound,
  CertificateNotOfDevice: createError(
    'CERTIFICATE_NOT_OF_DEVICE',
    'Certificate %s is not one of device %s',
    404,
  ),
  // One code per reason, each with its values, so a page can say it in the reader's language.
  ExportRangeInvalid: createError(
    'EXPORT_RANGE_INVALID',
    'Cannot download that range: "to" (%s) is before "from" (%s)',
    400,
  ),
  ExportRangeTooLong: createError(
    'EXPORT_RANGE_TOO_LONG',
    'Cannot download that range: at most %d days per download (asked for %d); download the rest separately',
    400,
  ),
  ExportTooManyRows: createError(
    'EXPORT_TOO_MANY_ROWS',
    'Cannot download that range: more than %d readings in this range; choose fewer days',
    400,
  ),
};
