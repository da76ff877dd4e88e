import createError from '@fastify/error';

/** Device registry errors; routes map them to HTTP statuses by code. */
export const DeviceErrors = {
  SiteNotFound: createError('SITE_NOT_FOUND', 'Site %s not found', 404),
  UnitNotFound: createError('UNIT_NOT_FOUND', 'Unit %s not found', 404),
  DeviceNotFound: createError('DEVICE_NOT_FOUND', 'Device %s not found', 404),
  DeviceExists: createError('DEVICE_EXISTS', 'Device %s already exists', 409),
  NameTaken: createError('NAME_TAKEN', '%s', 409),
  KindMismatch: createError(
    'KIND_MISMATCH',
    'A %s device cannot be attached to the %s unit %s',
    400,
  ),
  InvalidDeviceId: createError(
    'INVALID_DEVICE_ID',
    'Device ids are 3-64 characters: lower-case letters, digits, "-" and "_", starting with a letter or digit (got %s)',
    400,
  ),
  InvalidTransition: createError('INVALID_STATUS_TRANSITION', 'A %s device cannot become %s', 409),
};
