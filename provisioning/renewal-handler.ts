import type { Logger } from 'pino';
import type { DownstreamPublisher, UpstreamHandler } from '../broker/types.ts';
import type { Pki } from './pki-service.ts';

/**
 * `devices/{id}/cert/csr` → `devices/{id}/cert/issued`. The reply is a JSON object: the new
 * certificate ({certificate, chain, ca, notAfter, serial}) or {error: {code, message}}. A refused
 * renewal is still acknowledged: the device gets its answer on the reply topic.
 */
export function createRenewalHandler(deps: {
  pki: Pki;
  publisher: DownstreamPublisher;
  logger: Logger;
}): UpstreamHandler {
  return async (session, message) => {
    let reply: unknown;
    try {
      const issued = await deps.pki.renew(session, message.payload.toString('utf8'));
      reply = {
        serial: issued.serial,
        certificate: issued.certificate,
        chain: issued.chain,
        ca: issued.ca,
        notAfter: issued.notAfter,
      };
      deps.logger.info(
        { deviceId: session.deviceId, oldSerial: session.certSerial, newSerial: issued.serial },
        'certificate renewed',
      );
    } catch (err) {
      const e = err as { code?: string; statusCode?: number; message?: string };
      if (!e.code || (e.statusCode ?? 500) >= 500) throw err; // no PUBACK: the device retries
      reply = { error: { code: e.code, message: e.message } };
    }
    await deps.publisher.publish(session.deviceId, 'cert/issued', JSON.stringify(reply), {
      qos: 1,
    });
  };
}
