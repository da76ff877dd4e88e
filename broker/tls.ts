import { constants } from 'node:crypto';
import type tls from 'node:tls';

/** TLS material for the MQTT listener, all PEM, from the PKI. */
export interface BrokerTlsMaterial {
  key: string;
  cert: string;
  /** Our trust anchors: the root and the issuing CA. Nothing else is trusted. */
  ca: string[];
  /** One PEM per CRL (node reads only the first block of a string): issuing CA's and root's. */
  crl?: string[] | undefined;
}

/**
 * TLS 1.2 and 1.3 only; for 1.2, forward-secret AEAD suites only (1.3's suites are all of that
 * kind). No session tickets: every connection is a full handshake with the client certificate,
 * and the registry is consulted at every CONNECT anyway.
 */
export const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

export function tlsServerOptions(m: BrokerTlsMaterial): tls.TlsOptions {
  return {
    key: m.key,
    cert: m.cert,
    ca: m.ca,
    ...(m.crl ? { crl: m.crl } : {}),
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
    ciphers: TLS12_CIPHERS,
    honorCipherOrder: true,
    secureOptions: constants.SSL_OP_NO_TICKET | constants.SSL_OP_NO_RENEGOTIATION,
    handshakeTimeout: 10_000,
  };
}
