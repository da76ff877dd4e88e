import createError from '@fastify/error';

/** Authentication and account errors; codes are stable, tests assert on them. */
export const AuthErrors = {
  InvalidCredentials: createError('INVALID_CREDENTIALS', 'Wrong username or password', 401),
  LoginThrottled: createError(
    'LOGIN_THROTTLED',
    'Too many failed sign-ins; try again in %d s',
    429,
  ),
  LoginBusy: createError('LOGIN_BUSY', 'Too many sign-ins at once; try again in a second', 429),
  CsrfFailed: createError(
    'CSRF_FAILED',
    'Missing or wrong CSRF token (send the x-csrf-token header)',
    403,
  ),
  LinkInvalid: createError('LINK_INVALID', 'This link is invalid, expired or already used', 400),
  WeakPassword: createError('WEAK_PASSWORD', 'Password %s', 400),
  UserNotFound: createError('USER_NOT_FOUND', 'No such user', 404),
  UsernameTaken: createError('USERNAME_TAKEN', 'Username %s is taken', 409),
  TokenNotFound: createError('API_TOKEN_NOT_FOUND', 'No such API token', 404),
  TokenRoleTooWide: createError(
    'API_TOKEN_ROLE_TOO_WIDE',
    'A token may not carry more than its owner has: %s',
    403,
  ),
  TokenLifetimeTooLong: createError(
    'API_TOKEN_LIFETIME_TOO_LONG',
    'An API token may live at most %d days',
    400,
  ),
  UnknownUnits: createError('UNKNOWN_UNITS', 'One of the units does not exist', 400),
};
