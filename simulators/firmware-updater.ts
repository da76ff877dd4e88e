import { createHash } from 'node:crypto';
import https from 'node:https';
import { verifyManifest } from '../firmware/signing.ts';

/**
 * The device side of a firmware update, as real firmware does it: verify the manifest's Ed25519
 * signature with the pinned public key, that it is for this device and not expired; download
 * over HTTPS with the device's own certificate; check size and SHA-256; install; report every
 * step on the state topic. Anything wrong is refused and reported as a failure with its reason.
 */
export interface UpdaterDeps {
  deviceId: string;
  /** The firmware-signing public key (GET /api/v1/firmware/signing-key, pinned at enrolment). */
  publicKeyPem: string;
  tls: { key: string; cert: string; ca: string };
  /** Publishes `devices/{id}/state`. */
  state(payload: Record<string, unknown>): Promise<void>;
  /** "Flashes" the image: the new version from now on. */
  install(version: string, image: Buffer): Promise<void>;
}

function download(
  url: string,
  tls: UpdaterDeps['tls'],
  maxBytes: number,
): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      url,
      { key: tls.key, cert: tls.cert, ca: tls.ca, timeout: 30_000 },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > maxBytes) req.destroy(new Error('image larger than its manifest says'));
          else chunks.push(c);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('download timed out')));
    req.on('error', reject);
  });
}

export function createFirmwareUpdater(deps: UpdaterDeps) {
  const outcomes: {
    rolloutId: string | undefined;
    status: 'installed' | 'failed';
    reason?: string;
  }[] = [];
  /** Rollouts acted on: the gateway may send a manifest again (on a new subscription), and one is enough. */
  const seen = new Set<string>();
  const report = (rolloutId: string | undefined, status: string, reason?: string) =>
    rolloutId
      ? deps.state({ firmwareUpdate: { rolloutId, status, ...(reason ? { reason } : {}) } })
      : Promise.resolve();

  return {
    outcomes,
    async handle(payload: Buffer): Promise<void> {
      let message: unknown;
      try {
        message = JSON.parse(payload.toString('utf8'));
      } catch {
        outcomes.push({ rolloutId: undefined, status: 'failed', reason: 'MALFORMED' });
        return;
      }
      // Only for the report: an unverified rolloutId names what was refused, nothing more.
      const claimed = (message as { manifest?: { rolloutId?: unknown } } | null)?.manifest
        ?.rolloutId;
      const rolloutId =
        typeof claimed === 'string' && /^[0-9a-f-]{36}$/.test(claimed) ? claimed : undefined;
      const fail = async (reason: string) => {
        outcomes.push({ rolloutId, status: 'failed', reason });
        await report(rolloutId, 'failed', reason);
      };
      const verdict = verifyManifest(message, deps.publicKeyPem, { deviceId: deps.deviceId });
      if (!verdict.ok) return fail(verdict.reason);
      const m = verdict.manifest;
      if (seen.has(m.rolloutId)) return;
      seen.add(m.rolloutId);
      await report(rolloutId, 'downloading');
      let got: { status: number; body: Buffer };
      try {
        got = await download(m.url, deps.tls, m.size);
      } catch (err) {
        return fail(`DOWNLOAD_FAILED: ${(err as Error).message}`.slice(0, 200));
      }
      if (got.status !== 200) return fail(`DOWNLOAD_REFUSED: HTTP ${got.status}`);
      await report(rolloutId, 'verifying');
      if (got.body.length !== m.size) return fail('SIZE_MISMATCH');
      if (createHash('sha256').update(got.body).digest('hex') !== m.sha256)
        return fail('HASH_MISMATCH');
      await deps.install(m.version, got.body);
      outcomes.push({ rolloutId, status: 'installed' });
      await deps.state({ firmware: m.version, firmwareUpdate: { rolloutId, status: 'installed' } });
    },
  };
}
