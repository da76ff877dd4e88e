import type { Client } from 'aedes';
import type tls from 'node:tls';
import { normaliseSerial } from './identity-fns.ts';
import { GuardedConnection } from './packet-guard.ts';

/** The TLS socket under an Aedes client (every client of ours comes through a GuardedConnection). */
export const socketOf = (client: Client): tls.TLSSocket | undefined =>
  client.conn instanceof GuardedConnection ? client.conn.socket : undefined;

/** The verified certificate's subject CN (the device id), if any. */
export function peerCn(socket: tls.TLSSocket): string | undefined {
  const cn = socket.getPeerCertificate()?.subject?.CN;
  return typeof cn === 'string' ? cn : undefined;
}

export function peerSerial(socket: tls.TLSSocket): string | undefined {
  const cert = socket.getPeerCertificate();
  return cert?.serialNumber ? normaliseSerial(cert.serialNumber) : undefined;
}
