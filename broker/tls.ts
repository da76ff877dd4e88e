import { constants, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type tls from 'node:tls';
import { normaliseFingerprint, normaliseSerial } from './identity-fns.ts';

/** TLS material for the MQTT listener, all PEM, from the PKI. */
export interface BrokerTlsMaterial {
  key: string;
  cert: string;
  /** Our trust anchors: the root and the issuing CA. Nothing else is trusted. */
  ca: string[];
  /** One PEM per CRL (node reads only the first block of a string): issuing CA's and root's. */
  crl?: string[] | undefined;
  /**
   * Session ticket keys (48 bytes: name, HMAC and AES keys). The same keys across restarts let
   * devices resume after a gateway restart (loadOrCreateTicketKeys); without them, each broker
   * makes its own, and resumption works until the next restart.
   */
  ticketKeys?: Buffer | undefined;
}

/**
 * How long a device may resume with a ticket: TLS 1.3 allows at most 7 days (RFC 8446 §4.6.1).
 * A day covers a gateway restart and a night's link outage; a device connected longer than that
 * comes back with a full handshake.
 */
export const TICKET_LIFETIME_S = 86_400;

/**
 * TLS 1.2 and 1.3 only; for 1.2, forward-secret AEAD suites only (1.3's suites are all of that
 * kind).
 *
 * `resumption`: session tickets (RFC 8446 §4.6.1, RFC 5077), so that a device coming back (a
 * reconnect storm after a restart) skips the certificate exchange and the RSA signatures. A
 * resumed session carries the certificate and verify result of its full handshake: it is not
 * checked against the CRL again. That is why the registry is read at every CONNECT (ADR 0002,
 * broker-service.ts authenticate): a revoked certificate or a suspended device is refused there,
 * resumed or not. TLS 1.3 resumption keeps an (EC)DHE exchange (psk_dhe_ke, OpenSSL's only mode
 * by default), so forward secrecy holds for the session's traffic. Without `resumption`: no tickets.
 *
 * `decideAfterHandshake`: the handshake verifies the certificate (chain to our CA, validity, the
 * CRLs) but does not abort on failure, so that the refusal can be recorded with the certificate
 * that was presented (node has already freed it by the time `tlsClientError` fires). The server
 * must then pass every socket through `admitAuthorized` before anything reads from it.
 */
export const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

export function tlsServerOptions(
  m: BrokerTlsMaterial,
  opts: { decideAfterHandshake?: boolean; resumption?: boolean } = {},
): tls.TlsOptions {
  const tickets = opts.resumption === true;
  return {
    key: m.key,
    cert: m.cert,
    ca: m.ca,
    ...(m.crl ? { crl: m.crl } : {}),
    requestCert: true,
    rejectUnauthorized: opts.decideAfterHandshake !== true,
    minVersion: 'TLSv1.2',
    ciphers: TLS12_CIPHERS,
    honorCipherOrder: true,
    secureOptions: (tickets ? 0 : constants.SSL_OP_NO_TICKET) | constants.SSL_OP_NO_RENEGOTIATION,
    handshakeTimeout: 10_000,
    ...(tickets
      ? {
          // Named, so that a setSecureContext (a CRL refresh) keeps the tickets already handed out.
          ticketKeys: m.ticketKeys ?? randomBytes(48),
          sessionTimeout: TICKET_LIFETIME_S,
          // Fixed, not node's default (a hash of the command line): a ticket names the context it is for.
          sessionIdContext: 'thamani-mqtt',
        }
      : {}),
  };
}

/** The ticket keys under `file` (0600), made on first use: tickets survive a gateway restart. */
export function loadOrCreateTicketKeys(file: string): Buffer {
  if (existsSync(file)) {
    const keys = readFileSync(file);
    if (keys.length === 48) return keys;
  }
  const keys = randomBytes(48);
  writeFileSync(file, keys, { mode: 0o600 });
  return keys;
}

/** Why a handshake's client was not admitted, and the certificate it presented, if any. */
export interface TlsRefusal {
  /** OpenSSL's verify result (`CERT_REVOKED`, `CERT_HAS_EXPIRED`, `UNABLE_TO_VERIFY_LEAF_SIGNATURE`, …) or `NO_CERTIFICATE`. */
  reason: string;
  certSerial: string | undefined;
  certFingerprint: string | undefined;
  /** The presented certificate's subject and issuer CN: attacker text, escaped when stored. */
  subjectCn: string | undefined;
  issuerCn: string | undefined;
  ip: string | undefined;
  /** The certificate chains to our CA (revoked, expired): its serial names one of our devices. */
  ourCertificate: boolean;
}

/**
 * The gate of a server built with `decideAfterHandshake`: a socket whose client certificate did
 * not verify is destroyed here, before any byte it sent is read, and the refusal returned for
 * the record; an authorized socket passes (undefined). Only `socket.authorized === true` passes:
 * no certificate, a foreign CA, an expired or revoked certificate all fail.
 */
/** Verify results of a certificate whose chain and signature are ours: only its status is wrong. */
const OURS_BUT_REFUSED = new Set(['CERT_REVOKED', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);

export function admitAuthorized(socket: tls.TLSSocket): TlsRefusal | undefined {
  if (socket.authorized === true) return undefined;
  const cert = socket.getPeerCertificate();
  const presented = cert !== null && typeof cert === 'object' && Object.keys(cert).length > 0;
  const cn = (name: tls.PeerCertificate['subject'] | undefined): string | undefined => {
    const v = name?.CN;
    return Array.isArray(v) ? v.join(',') : v;
  };
  const refusal: TlsRefusal = {
    reason: presented ? String(socket.authorizationError ?? 'UNAUTHORIZED') : 'NO_CERTIFICATE',
    certSerial: presented && cert.serialNumber ? normaliseSerial(cert.serialNumber) : undefined,
    certFingerprint:
      presented && cert.fingerprint256 ? normaliseFingerprint(cert.fingerprint256) : undefined,
    subjectCn: presented ? cn(cert.subject) : undefined,
    issuerCn: presented ? cn(cert.issuer) : undefined,
    ip: socket.remoteAddress,
    ourCertificate: presented && OURS_BUT_REFUSED.has(String(socket.authorizationError)),
  };
  socket.destroy();
  return refusal;
}
