import type pg from 'pg';
import type { Logger } from 'pino';
import type { AuditLog, SecurityEvents } from '../audit/index.ts';
import type { DownstreamPublisher } from '../broker/types.ts';
import { createFirmwareRegistry } from './firmware-registry.ts';
import { firmwareRepo, type ImageFacts } from './firmware-repo.ts';
import type { FirmwareSigner } from './signing.ts';

/**
 * The firmware service: the registry (firmware-registry.ts: upload, approve, roll out, pause,
 * resume, on the caller's transaction, audited there) and the rollout engine, which runs in the
 * gateway (sends manifests wave by wave, takes device reports, serves downloads, pauses by
 * itself) and audits as `system` or as the device.
 */

export interface FirmwareConfig {
  maxImageBytes: number;
  requireApproval: boolean;
  manifestTtlHours: number;
  /** https://host:DEVICE_HTTPS_PORT: where devices download with their client certificate. */
  downloadBaseUrl: string;
}

export interface DeviceReport {
  rolloutId: string;
  status: 'downloading' | 'verifying' | 'installed' | 'failed';
  reason?: string | undefined;
}

const TERMINAL = new Set(['installed', 'failed', 'skipped']);

export function createFirmwareService(deps: {
  pool: pg.Pool;
  audit: AuditLog;
  /** Refused downloads: aggregated per device and reason (a device asking in a loop is one record a window). */
  securityEvents: Pick<SecurityEvents, 'record'>;
  signer: FirmwareSigner;
  publisher: DownstreamPublisher;
  config: FirmwareConfig;
  logger: Logger;
  now?: () => Date;
}) {
  const now = deps.now ?? (() => new Date());
  const system = { actorId: 'system', actorRole: 'system' };
  let ticking: Promise<void> = Promise.resolve();
  /** When each device last had its manifests looked up again: a SUBSCRIBE flood costs one query a second. */
  const lastResend = new Map<string, number>();

  async function imageOf(sha256: string): Promise<ImageFacts> {
    const image = await firmwareRepo.image(deps.pool, sha256);
    if (!image) throw new Error(`firmware image ${sha256} not found`);
    return image;
  }
  function manifestFor(
    rollout: { id: string; image_sha256: string },
    image: ImageFacts,
    deviceId: string,
    expiresAt: Date,
  ) {
    return deps.signer.sign({
      v: 1,
      rolloutId: rollout.id,
      deviceId,
      deviceKind: image.device_kind,
      hardwareRevision: image.hardware_revision,
      version: image.version,
      size: image.size,
      sha256: rollout.image_sha256,
      url: `${deps.config.downloadBaseUrl}/firmware/${rollout.image_sha256}`,
      expiresAt: expiresAt.toISOString(),
    });
  }

  async function sendWave(
    rollout: { id: string; image_sha256: string; manifest_ttl_hours: number },
    deviceIds: string[],
  ): Promise<void> {
    const image = await imageOf(rollout.image_sha256);
    for (const deviceId of deviceIds) {
      const signed = manifestFor(
        rollout,
        image,
        deviceId,
        new Date(now().getTime() + rollout.manifest_ttl_hours * 3_600_000),
      );
      // sent_at from the same clock as expiresAt: a manifest sent again keeps the expiry (resend).
      // Claimed first: another node ticking the same wave (a report, an API call, a leader
      // handover) sends each device's manifest once, not once per node (ADR 0011).
      if (!(await firmwareRepo.claimSend(deps.pool, rollout.id, deviceId, now()))) continue;
      await deps.audit.record({
        ...system,
        action: 'firmware.manifest_sent',
        targetType: 'device',
        targetId: deviceId,
        after: {
          rolloutId: rollout.id,
          version: image.version,
          expiresAt: signed.manifest.expiresAt,
        },
      });
      await deps.publisher.publish(deviceId, 'firmware/manifest', JSON.stringify(signed), {
        qos: 1,
      });
    }
  }

  /** One pass over the active rollouts: time out, pause past the threshold, complete, or send the next wave. */
  async function tickOnce(): Promise<void> {
    for (const r of await firmwareRepo.activeRollouts(deps.pool)) {
      // A manifest nobody acted on before it expired is a failure of that device.
      await firmwareRepo.timeOut(deps.pool, r.id, now(), r.manifest_ttl_hours);
      const rows = await firmwareRepo.progress(deps.pool, r.id);
      const reached = rows.filter((d) => d.status !== 'pending' && d.status !== 'skipped');
      const failed = rows.filter((d) => d.status === 'failed').length;
      if (reached.length > 0 && failed / reached.length > r.failure_threshold) {
        const reason = `${failed} of ${reached.length} devices failed (threshold ${Math.round(r.failure_threshold * 100)} %)`;
        if (!(await firmwareRepo.pauseActive(deps.pool, r.id, reason))) continue;
        await deps.audit.record({
          ...system,
          action: 'firmware.rollout_paused',
          targetType: 'firmware_rollout',
          targetId: r.id,
          after: { automatic: true, reason },
        });
        deps.logger.warn({ rollout: r.id, reason }, 'firmware rollout paused automatically');
        continue;
      }
      const open = rows.filter((d) => !TERMINAL.has(d.status));
      if (open.length === 0) {
        if (!(await firmwareRepo.completeActive(deps.pool, r.id))) continue;
        await deps.audit.record({
          ...system,
          action: 'firmware.rollout_completed',
          targetType: 'firmware_rollout',
          targetId: r.id,
          after: {
            installed: rows.filter((d) => d.status === 'installed').length,
            failed,
            skipped: rows.filter((d) => d.status === 'skipped').length,
          },
        });
        continue;
      }
      const wave = Math.min(...open.map((d) => d.wave));
      const due = open
        .filter((d) => d.wave === wave && d.status === 'pending')
        .map((d) => d.device_id);
      if (due.length > 0) await sendWave(r, due);
    }
  }

  const engine = {
    /** Runs the engine once more after whatever it is doing (serial: one pass at a time). */
    tick(): Promise<void> {
      ticking = ticking
        .then(tickOnce)
        .catch((err: unknown) => deps.logger.error({ err }, 'firmware rollout pass failed'));
      return ticking;
    },

    /** `devices/{id}/state` with `firmwareUpdate`: progress of a rollout on one device. */
    async report(deviceId: string, report: DeviceReport): Promise<void> {
      const row = await firmwareRepo.deviceInRollout(deps.pool, report.rolloutId, deviceId);
      if (!row || TERMINAL.has(row.status)) return; // not (or no longer) part of that rollout
      await firmwareRepo.setDeviceProgress(
        deps.pool,
        report.rolloutId,
        deviceId,
        report.status,
        report.reason ?? null,
      );
      if (report.status === 'installed')
        await firmwareRepo.setInstalledVersion(deps.pool, deviceId, row.version);
      await deps.audit.record({
        actorId: `device:${deviceId}`,
        actorRole: 'device',
        action: 'firmware.device_report',
        targetType: 'firmware_rollout',
        targetId: report.rolloutId,
        after: { status: report.status, reason: report.reason ?? null, version: row.version },
      });
      // Not awaited: the device's PUBACK must not wait for the next wave's manifests.
      if (TERMINAL.has(report.status)) void engine.tick();
    },

    /**
     * The device has just subscribed to its manifests: send again each manifest of an active
     * rollout that it has not answered and that has not expired, with its first expiry. The
     * broker keeps a QoS 1 message for an offline device in memory only, so a gateway restart
     * loses it, and the device would otherwise sit its wave out until TIMEOUT (counted as a
     * failure, which can pause the rollout). A device ignores a manifest it already acts on
     * (docs/device-contract.md). At most once a second per device. Answers how many were sent.
     */
    async resend(deviceId: string): Promise<number> {
      const at = Date.now();
      if (at - (lastResend.get(deviceId) ?? 0) < 1000) return 0;
      if (lastResend.size >= 10_000) lastResend.clear();
      lastResend.set(deviceId, at);
      const rows = await firmwareRepo.unansweredManifests(deps.pool, deviceId, now());
      for (const r of rows) {
        const signed = manifestFor(
          r,
          r,
          deviceId,
          new Date(r.sent_at.getTime() + r.manifest_ttl_hours * 3_600_000),
        );
        await deps.publisher.publish(deviceId, 'firmware/manifest', JSON.stringify(signed), {
          qos: 1,
        });
      }
      if (rows.length > 0)
        deps.logger.info(
          { deviceId, rollouts: rows.map((r) => r.id) },
          'firmware manifest sent again: the device subscribed while it was unanswered',
        );
      return rows.length;
    },

    /** The image, if this device has it in an active rollout; else why not (audited either way). */
    async download(
      deviceId: string,
      sha256: string,
      remoteAddress: string | undefined,
    ): Promise<{ ok: true; image: Buffer } | { ok: false; reason: string }> {
      const row = await firmwareRepo.downloadFor(deps.pool, deviceId, sha256);
      // A paused rollout stops downloads too: it was paused because devices failed on this image.
      const reason = !row
        ? 'not targeted to this device'
        : row.status === 'paused'
          ? 'rollout paused'
          : undefined;
      if (reason || !row) {
        deps.securityEvents.record({
          action: 'security.firmware_download_denied',
          reason: reason ?? 'not targeted to this device',
          deviceId,
          ip: remoteAddress,
          target: sha256,
          targetType: 'firmware_image',
        });
        return { ok: false, reason: reason ?? 'not targeted to this device' };
      }
      await deps.audit.record({
        actorId: `device:${deviceId}`,
        actorRole: 'device',
        ip: remoteAddress ?? null,
        action: 'firmware.download',
        targetType: 'firmware_image',
        targetId: sha256,
      });
      return { ok: true, image: row.image };
    },
  };

  return {
    ...engine,
    publicKeyPem: deps.signer.publicKeyPem,
    keyId: deps.signer.keyId,

    ...createFirmwareRegistry(deps.config),
  };
}

export type FirmwareService = ReturnType<typeof createFirmwareService>;
