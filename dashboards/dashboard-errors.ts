import createError from '@fastify/error';

/** Dashboard and alert errors; the API's error handler turns them into coded JSON (or a page). */
export const DashboardErrors = {
  UnitNotFound: createError('UNIT_NOT_FOUND', 'Unit %s not found', 404),
  DeviceNotFound: createError('DEVICE_NOT_FOUND', 'Device %s not found', 404),
  AlertNotFound: createError('ALERT_NOT_FOUND', 'Alert %s not found', 404),
  AlreadyAcknowledged: createError('ALERT_ALREADY_ACKNOWLEDGED', 'Alert %s was already acknowledged by %s', 409),
  RuleNotFound: createError('ALERT_RULE_NOT_FOUND', 'Alert rule %s not found', 404),
  RuleInvalid: createError('ALERT_RULE_INVALID', '%s', 400),
};
