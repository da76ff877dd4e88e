import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { SecurityEvents } from '../audit/index.ts';
import { normaliseSerial, type ConnectionIdentity } from '../broker/identity-fns.ts';
import { admitAuthorized, tlsServerOptions, type BrokerTlsMaterial } from '../broker/tls.ts';
import type { FirmwareService } from './firmware-service.ts';

/**
 * Where devices download firmware: HTTPS with the same mutual TLS as the broker (our CA only, the
 * CRLs, TLS 1.2+), then the registry (the certificate must be active, the device active) and the
 * rollout (the image must be targeted to this device). One route, `GET /firmware/{sha256}`: a
 * plain node:https handler, nothing to parse but the path.
 */
export function createFirmwareDownloadServer(deps: {
  tls: BrokerTlsMaterial;
  crl?: () => Promise<string[] | undefined>;
  identity: { connectionIdentity(serial: string): Promise<ConnectionIdentity | undefined> };
  firmware: Pick<FirmwareService, 'download'>;
  securityEvents: Pick<SecurityEvents, 'record'>;
  logger: Logger;
}) {
  let material = deps.tls;
  const server = https.createServer(
    tlsServerOptions(material, { decideAfterHandshake: true }),
    (req, res) => {
      const refuse = (status: number, code: string, message: string): void => {
        res
          .writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' })
          .end(JSON.stringify({ code, message }));
      };
      void (async () => {
        const match = /^\/firmware\/([0-9a-f]{64})$/.exec(req.url ?? '');
        if (req.method !== 'GET' || !match)
          return refuse(404, 'NOT_FOUND', 'GET /firmware/{sha256} is the only resource here');
        const socket = req.socket as TLSSocket;
        const cert = socket.getPeerCertificate();
        const identity =
          socket.authorized && cert?.serialNumber
            ? await deps.identity.connectionIdentity(normaliseSerial(cert.serialNumber))
            : undefined;
        if (
          !identity ||
          identity.certStatus !== 'active' ||
          identity.deviceStatus !== 'active' ||
          identity.notAfter.getTime() < Date.now()
        ) {
          return refuse(
            403,
            'DEVICE_NOT_ALLOWED',
            'this certificate does not belong to an active device',
          );
        }
        const result = await deps.firmware.download(
          identity.deviceId,
          match[1]!,
          socket.remoteAddress,
        );
        if (!result.ok)
          return refuse(
            403,
            'FIRMWARE_NOT_TARGETED',
            `this image is not for ${identity.deviceId} (${result.reason})`,
          );
        res
          .writeHead(200, {
            'content-type': 'application/octet-stream',
            'content-length': result.image.length,
            'cache-control': 'no-store',
          })
          .end(result.image);
      })().catch((err: unknown) => {
        deps.logger.error({ err }, 'firmware download failed');
        if (!res.headersSent) refuse(500, 'INTERNAL', 'firmware download failed');
      });
    },
  );
  // The handshake verifies the certificate without aborting, so that a refusal is recorded with the
  // certificate presented; this listener runs before the HTTP parser is attached and destroys the
  // socket first (the request handler checks `authorized` again).
  server.prependListener('secureConnection', (socket: TLSSocket) => {
    const refused = admitAuthorized(socket);
    if (refused)
      deps.securityEvents.record({
        action: 'security.tls_refused',
        reason: refused.reason,
        certSerial: refused.certSerial,
        certFingerprint: refused.certFingerprint,
        ourCertificate: refused.ourCertificate,
        ip: refused.ip,
        target: refused.subjectCn ?? '',
        targetType: 'firmware-https',
        details: { issuerCn: refused.issuerCn ?? null },
      });
  });
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket) => {
    deps.securityEvents.record({
      action: 'security.tls_refused',
      reason: err.code ?? 'TLS_ERROR',
      ip: socket.remoteAddress,
      target: '',
      targetType: 'firmware-https',
    });
  });
  return {
    server,
    async listen(port: number, host: string): Promise<number> {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => resolve());
      });
      return (server.address() as { port: number }).port;
    },
    /** A new CRL (a revocation): new handshakes check it. */
    async refreshCrl(): Promise<void> {
      if (!deps.crl) return;
      material = { ...material, crl: await deps.crl() };
      server.setSecureContext(tlsServerOptions(material, { decideAfterHandshake: true }));
    },
    close: (): Promise<void> => new Promise((resolve) => server.close(() => resolve())),
  };
}
