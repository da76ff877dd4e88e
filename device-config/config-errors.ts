import createError from '@fastify/error';

/** Remote configuration and command errors (the API's error handler maps them). */
export const ConfigErrors = {
  DeviceNotFound: createError('CONFIG_DEVICE_NOT_FOUND', 'No device %s', 404),
  UnitNotFound: createError('CONFIG_UNIT_NOT_FOUND', 'No unit %s', 404),
  Invalid: createError('CONFIG_INVALID', 'Invalid configuration for a %s: %s', 400),
  CommandInvalid: createError('COMMAND_INVALID', '%s', 400),
  CommandNotFound: createError('COMMAND_NOT_FOUND', 'No command %s', 404),
};
