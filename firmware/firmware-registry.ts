import { createHash } from 'node:crypto';
import type { AuditActor, AuditLog } from '../audit/index.ts';
import type { Queryable } from '../db/timeseries.ts';
import { FirmwareErrors } from './firmware-errors.ts';
import {
  firmwareRepo,
  type ImageView,
  type RolloutTarget,
  type RolloutView,
} from './firmware-repo.ts';

export type { ImageView, RolloutTarget, RolloutView } from './firmware-repo.ts';

/**
 * The firmware registry: what technicians do (upload, approve, plan a rollout, pause, resume,
 * look). Each call runs on the caller's transaction (the API's scoped one, or the CLI's) and
 * records its audit entry through `record` on that same transaction. Sending manifests is the
 * gateway's engine (firmware-service.ts), which picks new rollouts up on its next pass.
 */

const VERSION = /^\d{1,5}\.\d{1,5}\.\d{1,5}$/;

/** Numeric comparison of dotted versions: -1, 0 or 1. */
export function compareVersions(a: string, b: string): number {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

/** A stable pseudo-random rank per (rollout, device): "10 % of the fleet" picks the same devices on every evaluation. */
function rank(rolloutId: string, deviceId: string): string {
  return createHash('sha256').update(`${rolloutId}:${deviceId}`).digest('hex');
}

/** Uploaded images, newest first, without their bytes. */
export function listImages(q: Queryable): Promise<ImageView[]> {
  return firmwareRepo.images(q);
}

/** A rollout and every device's progress in it. */
export async function readRollout(q: Queryable, id: string): Promise<RolloutView> {
  const r = await firmwareRepo.rollout(q, id);
  if (!r) throw new FirmwareErrors.RolloutNotFound(id);
  const devices = await firmwareRepo.rolloutDevices(q, id);
  return { ...r, devices };
}

export function createFirmwareRegistry(config: {
  requireApproval: boolean;
  manifestTtlHours: number;
}) {
  return {
    async upload(
      q: Queryable,
      input: {
        image: Buffer;
        version: string;
        deviceKind: 'biodigester' | 'collection_point';
        hardwareRevision?: string | undefined;
        releaseNotes?: string | undefined;
      },
      actor: AuditActor,
      record: AuditLog['record'],
    ) {
      if (!VERSION.test(input.version)) throw new FirmwareErrors.InvalidVersion(input.version);
      if (input.image.length === 0) throw new FirmwareErrors.Empty();
      const sha256 = createHash('sha256').update(input.image).digest('hex');
      const same = await firmwareRepo.sameImage(q, {
        sha256,
        deviceKind: input.deviceKind,
        hardwareRevision: input.hardwareRevision ?? null,
        version: input.version,
      });
      if (same)
        throw new FirmwareErrors.Exists(
          same.sha256 === sha256
            ? `this image is already uploaded as ${same.version} (${sha256})`
            : `${input.deviceKind} ${input.version} already exists (${same.sha256})`,
        );
      await firmwareRepo.insertImage(q, {
        sha256,
        deviceKind: input.deviceKind,
        hardwareRevision: input.hardwareRevision ?? null,
        version: input.version,
        releaseNotes: input.releaseNotes ?? '',
        image: input.image,
        uploadedBy: actor.actorId,
      });
      const summary = {
        sha256,
        version: input.version,
        deviceKind: input.deviceKind,
        hardwareRevision: input.hardwareRevision ?? null,
        size: input.image.length,
      };
      await record({
        ...actor,
        action: 'firmware.upload',
        targetType: 'firmware_image',
        targetId: sha256,
        after: summary,
      });
      return { ...summary, approvalRequired: config.requireApproval };
    },

    async approve(q: Queryable, sha256: string, actor: AuditActor, record: AuditLog['record']) {
      const img = await firmwareRepo.lockForApproval(q, sha256);
      if (!img) throw new FirmwareErrors.NotFound(sha256);
      if (img.approved_by) throw new FirmwareErrors.AlreadyApproved(sha256, img.approved_by);
      if (img.uploaded_by === actor.actorId) throw new FirmwareErrors.FourEyes(img.uploaded_by);
      await firmwareRepo.approve(q, sha256, actor.actorId);
      await record({
        ...actor,
        action: 'firmware.approve',
        targetType: 'firmware_image',
        targetId: sha256,
        before: { approved: false },
        after: { approved: true, uploadedBy: img.uploaded_by },
      });
      return { sha256, approvedBy: actor.actorId };
    },

    list: listImages,

    async createRollout(
      q: Queryable,
      input: {
        sha256: string;
        target: RolloutTarget;
        waveSize: number;
        failureThreshold: number;
        allowDowngrade: boolean;
      },
      actor: AuditActor,
      record: AuditLog['record'],
    ) {
      const img = await firmwareRepo.image(q, input.sha256);
      if (!img) throw new FirmwareErrors.NotFound(input.sha256);
      if (config.requireApproval && !img.approved_by)
        throw new FirmwareErrors.NotApproved(input.sha256);
      const t = input.target;
      if ('percent' in t && t.kind !== img.device_kind)
        throw new FirmwareErrors.NoTargets(`${t.kind} (the image is for ${img.device_kind})`);
      const candidates = await firmwareRepo.candidates(q, {
        kind: img.device_kind,
        hardwareRevision: img.hardware_revision,
        devices: 'devices' in t ? t.devices : null,
        unitId: 'unitId' in t ? t.unitId : null,
        siteId: 'siteId' in t ? t.siteId : null,
      });
      const id = await firmwareRepo.insertRollout(q, {
        sha256: input.sha256,
        target: t,
        waveSize: input.waveSize,
        failureThreshold: input.failureThreshold,
        allowDowngrade: input.allowDowngrade,
        manifestTtlHours: config.manifestTtlHours,
        createdBy: actor.actorId,
      });
      let chosen = candidates;
      if ('percent' in t)
        chosen = [...candidates]
          .sort((a, b) => (rank(id, a.id) < rank(id, b.id) ? -1 : 1))
          .slice(0, Math.ceil((candidates.length * t.percent) / 100));
      if (chosen.length === 0) throw new FirmwareErrors.NoTargets(img.device_kind);
      let inWave = 0;
      let wave = 1;
      const plan = chosen.map((d) => {
        // The same version again or an older one: skipped, unless downgrades were allowed explicitly.
        const downgrade =
          d.firmware_version !== null &&
          VERSION.test(d.firmware_version) &&
          compareVersions(img.version, d.firmware_version) <= 0;
        if (downgrade && !input.allowDowngrade)
          return {
            id: d.id,
            wave: 0,
            status: 'skipped',
            reason:
              compareVersions(img.version, d.firmware_version!) === 0
                ? 'ALREADY_INSTALLED'
                : 'DOWNGRADE_REFUSED',
            from: d.firmware_version,
          };
        if (inWave === input.waveSize) {
          wave++;
          inWave = 0;
        }
        inWave++;
        return { id: d.id, wave, status: 'pending', reason: null, from: d.firmware_version };
      });
      await firmwareRepo.insertPlan(q, id, plan);
      const summary = {
        id,
        sha256: input.sha256,
        version: img.version,
        target: t,
        devices: plan.filter((p) => p.status === 'pending').length,
        skipped: plan
          .filter((p) => p.status === 'skipped')
          .map((p) => ({ deviceId: p.id, reason: p.reason })),
        waves: wave,
        waveSize: input.waveSize,
        failureThreshold: input.failureThreshold,
      };
      await record({
        ...actor,
        action: 'firmware.rollout_create',
        targetType: 'firmware_rollout',
        targetId: id,
        after: summary,
      });
      return summary;
    },

    async setRolloutStatus(
      q: Queryable,
      id: string,
      to: 'active' | 'paused',
      actor: AuditActor,
      record: AuditLog['record'],
    ) {
      const r = await firmwareRepo.lockRolloutStatus(q, id);
      if (!r) throw new FirmwareErrors.RolloutNotFound(id);
      if (r.status === 'completed' || r.status === to)
        throw new FirmwareErrors.RolloutState(id, r.status);
      await firmwareRepo.setRolloutStatus(
        q,
        id,
        to,
        to === 'paused' ? `paused by ${actor.actorId}` : null,
      );
      await record({
        ...actor,
        action: to === 'paused' ? 'firmware.rollout_paused' : 'firmware.rollout_resumed',
        targetType: 'firmware_rollout',
        targetId: id,
        before: { status: r.status },
        after: { status: to },
      });
      return { id, status: to };
    },

    rollout: readRollout,
  };
}

export type FirmwareRegistry = ReturnType<typeof createFirmwareRegistry>;
