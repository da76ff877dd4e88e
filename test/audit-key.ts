import { ephemeralAuditSigner, publicKeysOf } from '../audit/index.ts';

/**
 * One real Ed25519 audit signing key per test process (generated, never written), shared by
 * every fixture so that the entries of fixtures on one database all verify under it.
 */
export const testAuditSigner = ephemeralAuditSigner();
export const testAuditPublicKeys = publicKeysOf(testAuditSigner);
