/**
 * Device PKI: our root and issuing CA (ca-store), RFC 5280 profiles and the CRL (x509-fns),
 * enrolment with one-time tokens, renewal, revocation and the certificate inventory
 * (pki-service), their HTTP routes (pki-routes) and CLI (pki-commands).
 */
export { loadOrCreateCa, importCa, type LoadedCa } from './ca-store.ts';
export { createPki, type Pki, type IssuedCertificate } from './pki-service.ts';
export { pkiRoutes } from './pki-routes.ts';
export { PkiErrors, revocationReasons } from './pki-errors.ts';
export { createRenewalHandler } from './renewal-handler.ts';
