/**
 * CONNACK return codes of MQTT 3.1.1 [MQTT-3.2.2.3]. Aedes sends the code carried by the error
 * passed to the authenticate callback, then closes the connection.
 */
export const ConnackCode = {
  unacceptableProtocol: 1,
  identifierRejected: 2,
  serverUnavailable: 3,
  badUsernameOrPassword: 4,
  notAuthorized: 5,
} as const;

export type ConnectRefusal =
  | 'no_client_certificate'
  | 'unknown_certificate'
  | 'certificate_revoked'
  | 'certificate_expired'
  | 'certificate_not_active'
  | 'device_suspended'
  | 'device_retired'
  | 'client_id_mismatch'
  | 'client_id_too_long'
  | 'credentials_not_accepted'
  | 'keepalive_out_of_bounds'
  | 'will_not_allowed'
  | 'registry_unavailable'
  | 'protocol_version_unsupported'
  | 'connect_rate_exceeded';

export const refusalCode: Record<ConnectRefusal, number> = {
  no_client_certificate: ConnackCode.notAuthorized,
  unknown_certificate: ConnackCode.notAuthorized,
  certificate_revoked: ConnackCode.notAuthorized,
  certificate_expired: ConnackCode.notAuthorized,
  certificate_not_active: ConnackCode.notAuthorized,
  device_suspended: ConnackCode.notAuthorized,
  device_retired: ConnackCode.notAuthorized,
  client_id_mismatch: ConnackCode.identifierRejected,
  client_id_too_long: ConnackCode.identifierRejected,
  // Username/password are never an alternative to the certificate.
  credentials_not_accepted: ConnackCode.badUsernameOrPassword,
  keepalive_out_of_bounds: ConnackCode.identifierRejected,
  will_not_allowed: ConnackCode.notAuthorized,
  registry_unavailable: ConnackCode.serverUnavailable,
  // [MQTT-3.1.2-2]: a protocol level the server does not support gets 1, then the connection closes.
  protocol_version_unsupported: ConnackCode.unacceptableProtocol,
  // Too many CONNECTs from one device in a window: "try later", which devices retry with backoff.
  connect_rate_exceeded: ConnackCode.serverUnavailable,
};

export class ConnectRefused extends Error {
  readonly returnCode: number;
  constructor(readonly reason: ConnectRefusal) {
    super(`connection refused: ${reason}`);
    this.returnCode = refusalCode[reason];
  }
}
