/**
 * Device PKI: our root and issuing CA (ca-store), RFC 5280 profiles and the CRL (x509-fns),
 * enrolment with one-time tokens, renewal, revocation and the certificate inventory
 * (pki-service). Its HTTP routes (pki-routes.ts) and CLI (pki-commands.ts) sit in higher layers
 * and are imported from their own files (docs/decisions/0006-import-layers.md).
 */
export { loadOrCreateCa, importCa, type LoadedCa } from './ca-store.ts';
export { createPki, type Pki, type IssuedCertificate } from './pki-service.ts';
export { PkiErrors, revocationReasons } from './pki-errors.ts';
export { createRenewalHandler } from './renewal-handler.ts';
