import createError from '@fastify/error';
import { DeviceErrors } from '../devices/device-errors.ts';

/** MRV errors; routes map them to HTTP statuses by code, the CLI prints the message. */
export const MrvError = {
  UNIT_NOT_FOUND: DeviceErrors.UnitNotFound,
  NOT_A_DIGESTER: createError(
    'MRV_NOT_A_DIGESTER',
    'Unit %s is a %s: MRV reports are for biodigesters',
    400,
  ),
  SITE_NOT_FOUND: createError('MRV_SITE_NOT_FOUND', 'Site %s not found', 404),
  SITE_WITHOUT_DIGESTERS: createError(
    'MRV_SITE_WITHOUT_DIGESTERS',
    'Site %s has no biodigester: nothing to report',
    400,
  ),
  BAD_PERIOD: createError('MRV_BAD_PERIOD', 'Invalid period: %s', 400),
  ALREADY_ISSUED: createError(
    'MRV_ALREADY_ISSUED',
    'The report of %s for this period is already issued (version %s): a correction needs a reason (--supersede-reason)',
    409,
  ),
  NOTHING_TO_CORRECT: createError(
    'MRV_NOTHING_TO_CORRECT',
    'No report of %s for this period to correct: issue it first, without a reason',
    409,
  ),
  BAD_BATCH: createError('MRV_BAD_BATCH', 'Invalid batch: %s', 400),
  VERIFIER_NOT_FOUND: createError(
    'MRV_VERIFIER_NOT_FOUND',
    'No live verifier token %s (unknown, or already revoked)',
    404,
  ),
  REPORT_NOT_FOUND: createError('MRV_REPORT_NOT_FOUND', 'MRV report %s not found', 404),
  READING_NOT_IN_REPORT: createError(
    'MRV_READING_NOT_IN_REPORT',
    'No reading of %s at %s among the leaves of report %s',
    404,
  ),
};
