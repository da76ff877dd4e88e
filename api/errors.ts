import createError from '@fastify/error';

/** HTTP edge errors. Services throw their own coded errors; routes map them here. */
export const ApiErrors = {
  Unauthenticated: createError('UNAUTHENTICATED', 'Sign in or send a valid token', 401),
  Forbidden: createError('FORBIDDEN', 'Your role may not %s', 403),
  NotFound: createError('NOT_FOUND', '%s not found', 404),
  Conflict: createError('CONFLICT', '%s', 409),
  CrossSite: createError(
    'CROSS_SITE_REQUEST',
    'Refused: a state-changing request from another site (%s)',
    403,
  ),
  BadRequest: createError('BAD_REQUEST', '%s', 400),
};
