import createError from '@fastify/error';

/** Firmware registry and rollout errors (routes let the API's error handler map them). */
export const FirmwareErrors = {
  InvalidVersion: createError(
    'FIRMWARE_INVALID_VERSION',
    'version must look like 1.2.3 (got %s)',
    400,
  ),
  Empty: createError('FIRMWARE_EMPTY', 'the firmware image is empty', 400),
  Exists: createError('FIRMWARE_EXISTS', '%s', 409),
  NotFound: createError('FIRMWARE_NOT_FOUND', 'Firmware image %s not found', 404),
  FourEyes: createError(
    'FIRMWARE_FOUR_EYES',
    'A release is approved by someone other than its uploader (%s uploaded it)',
    403,
  ),
  AlreadyApproved: createError(
    'FIRMWARE_ALREADY_APPROVED',
    'Firmware %s is already approved by %s',
    409,
  ),
  NotApproved: createError(
    'FIRMWARE_NOT_APPROVED',
    'Firmware %s needs a second person’s approval before it can roll out',
    409,
  ),
  NoTargets: createError(
    'FIRMWARE_NO_TARGETS',
    'No active %s device matches the rollout target',
    400,
  ),
  RolloutNotFound: createError('FIRMWARE_ROLLOUT_NOT_FOUND', 'Rollout %s not found', 404),
  RolloutState: createError('FIRMWARE_ROLLOUT_STATE', 'Rollout %s is %s', 409),
};
