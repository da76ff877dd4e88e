import createError from '@fastify/error';

/** PKI errors; each is a clear 4xx at the HTTP edge and an error object on the renewal topic. */
export const PkiErrors = {
  TokenInvalid: createError(
    'ENROLMENT_TOKEN_INVALID',
    'The enrolment token is unknown, used, expired or for another device',
    401,
  ),
  CsrMalformed: createError('CSR_MALFORMED', 'The CSR is not a PEM PKCS#10 request: %s', 400),
  CsrBadSignature: createError('CSR_BAD_SIGNATURE', 'The CSR signature does not verify', 400),
  CsrUnsupportedKey: createError(
    'CSR_UNSUPPORTED_KEY',
    'Only RSA keys of 2048 to 4096 bits and EC keys on P-256 are accepted (ADR 0002): %s',
    400,
  ),
  CsrUnsupportedSignature: createError(
    'CSR_UNSUPPORTED_SIGNATURE',
    'The CSR is signed with %s; accepted: SHA-256, SHA-384 or SHA-512 with RSA (PKCS#1 v1.5) or ECDSA',
    400,
  ),
  CsrCnMismatch: createError(
    'CSR_CN_MISMATCH',
    'The CSR subject CN must be the device id %s (got %s)',
    400,
  ),
  DeviceNotEnrollable: createError(
    'DEVICE_NOT_ENROLLABLE',
    'Device %s is %s and cannot get a certificate',
    409,
  ),
  CertificateNotFound: createError('CERTIFICATE_NOT_FOUND', 'Certificate %s not found', 404),
  AlreadyRevoked: createError(
    'CERTIFICATE_ALREADY_REVOKED',
    'Certificate %s is already revoked',
    409,
  ),
  InvalidReason: createError('INVALID_REVOCATION_REASON', 'Unknown revocation reason %s', 400),
  RenewalNotAllowed: createError(
    'RENEWAL_NOT_ALLOWED',
    'Renewal opens %s days before expiry (this certificate expires %s) unless a technician requests rotation',
    409,
  ),
  EnrolmentThrottled: createError(
    'ENROLMENT_THROTTLED',
    'Too many enrolment attempts from this address; try again in %d s',
    429,
  ),
  PasswordTooShort: createError(
    'PKCS12_PASSWORD_TOO_SHORT',
    'The PKCS#12 password must be at least 12 characters',
    400,
  ),
};

/** RFC 5280 §5.3.1 CRLReason codes we accept (removeFromCRL is delta-CRL only). */
export const revocationReasons = {
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  certificateHold: 6,
  privilegeWithdrawn: 9,
  aACompromise: 10,
} as const;
export type RevocationReason = keyof typeof revocationReasons;
