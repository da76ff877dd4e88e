import { createHash } from 'node:crypto';
import type { AuditActor, AuditLog } from '../audit/index.ts';
import type { Queryable } from '../db/timeseries.ts';
import { FirmwareErrors } from './firmware-errors.ts';

/**
 * The firmware registry: what technicians do (upload, approve, plan a rollout, pause, resume,
 * look). Each call runs on the caller's transaction (the API's scoped one, or the CLI's) and
 * records its audit entry through `record` on that same transaction. Sending manifests is the
 * gateway's engine (firmware-service.ts), which picks new rollouts up on its next pass.
 */

export type RolloutTarget = { devices: string[] } | { unitId: string } | { siteId: string } | { kind: 'biodigester' | 'collection_point'; percent: number };

export interface ImageView {
  sha256: string;
  deviceKind: string;
  hardwareRevision: string | null;
  version: string;
  size: number;
  releaseNotes: string;
  uploadedBy: string;
  uploadedAt: string;
  approvedBy: string | null;
  approvedAt: string | null;
}

export interface RolloutView {
  id: string;
  sha256: string;
  version: string;
  status: 'active' | 'paused' | 'completed';
  pausedReason: string | null;
  waveSize: number;
  failureThreshold: number;
  target: RolloutTarget;
  createdBy: string;
  createdAt: string;
  devices: { deviceId: string; wave: number; status: string; reason: string | null; fromVersion: string | null; sentAt: string | null; updatedAt: string }[];
}

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
export async function listImages(q: Queryable): Promise<ImageView[]> {
  return (
    await q.query<ImageView>(
      `SELECT sha256, device_kind AS "deviceKind", hardware_revision AS "hardwareRevision", version, size, release_notes AS "releaseNotes", uploaded_by AS "uploadedBy", uploaded_at AS "uploadedAt", approved_by AS "approvedBy", approved_at AS "approvedAt"
         FROM firmware_images ORDER BY uploaded_at DESC`,
    )
  ).rows;
}

/** A rollout and every device's progress in it. */
export async function readRollout(q: Queryable, id: string): Promise<RolloutView> {
  const { rows: [r] } = await q.query<Omit<RolloutView, 'devices'>>(
    `SELECT r.id, r.image_sha256 AS sha256, i.version, r.status, r.paused_reason AS "pausedReason", r.wave_size AS "waveSize", r.failure_threshold AS "failureThreshold", r.target, r.created_by AS "createdBy", r.created_at AS "createdAt"
       FROM firmware_rollouts r JOIN firmware_images i ON i.sha256 = r.image_sha256 WHERE r.id = $1`,
    [id],
  );
  if (!r) throw new FirmwareErrors.RolloutNotFound(id);
  const { rows: devices } = await q.query<RolloutView['devices'][number]>(`SELECT device_id AS "deviceId", wave, status, reason, from_version AS "fromVersion", sent_at AS "sentAt", updated_at AS "updatedAt" FROM firmware_rollout_devices WHERE rollout_id = $1 ORDER BY wave, device_id`, [id]);
  return { ...r, devices };
}

export function createFirmwareRegistry(config: { requireApproval: boolean; manifestTtlHours: number }) {
  return {
    async upload(q: Queryable, input: { image: Buffer; version: string; deviceKind: 'biodigester' | 'collection_point'; hardwareRevision?: string | undefined; releaseNotes?: string | undefined }, actor: AuditActor, record: AuditLog['record']) {
      if (!VERSION.test(input.version)) throw new FirmwareErrors.InvalidVersion(input.version);
      if (input.image.length === 0) throw new FirmwareErrors.Empty();
      const sha256 = createHash('sha256').update(input.image).digest('hex');
      const { rows: same } = await q.query<{ sha256: string; version: string }>(
        `SELECT sha256, version FROM firmware_images WHERE sha256 = $1 OR (device_kind = $2 AND hardware_revision IS NOT DISTINCT FROM $3 AND version = $4)`,
        [sha256, input.deviceKind, input.hardwareRevision ?? null, input.version],
      );
      if (same[0]) throw new FirmwareErrors.Exists(same[0].sha256 === sha256 ? `this image is already uploaded as ${same[0].version} (${sha256})` : `${input.deviceKind} ${input.version} already exists (${same[0].sha256})`);
      await q.query(
        `INSERT INTO firmware_images (sha256, device_kind, hardware_revision, version, size, release_notes, image, uploaded_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [sha256, input.deviceKind, input.hardwareRevision ?? null, input.version, input.image.length, input.releaseNotes ?? '', input.image, actor.actorId],
      );
      const summary = { sha256, version: input.version, deviceKind: input.deviceKind, hardwareRevision: input.hardwareRevision ?? null, size: input.image.length };
      await record({ ...actor, action: 'firmware.upload', targetType: 'firmware_image', targetId: sha256, after: summary });
      return { ...summary, approvalRequired: config.requireApproval };
    },

    async approve(q: Queryable, sha256: string, actor: AuditActor, record: AuditLog['record']) {
      const { rows: [img] } = await q.query<{ uploaded_by: string; approved_by: string | null }>(`SELECT uploaded_by, approved_by FROM firmware_images WHERE sha256 = $1 FOR UPDATE`, [sha256]);
      if (!img) throw new FirmwareErrors.NotFound(sha256);
      if (img.approved_by) throw new FirmwareErrors.AlreadyApproved(sha256, img.approved_by);
      if (img.uploaded_by === actor.actorId) throw new FirmwareErrors.FourEyes(img.uploaded_by);
      await q.query(`UPDATE firmware_images SET approved_by = $2, approved_at = now() WHERE sha256 = $1`, [sha256, actor.actorId]);
      await record({ ...actor, action: 'firmware.approve', targetType: 'firmware_image', targetId: sha256, before: { approved: false }, after: { approved: true, uploadedBy: img.uploaded_by } });
      return { sha256, approvedBy: actor.actorId };
    },

    list: listImages,

    async createRollout(q: Queryable, input: { sha256: string; target: RolloutTarget; waveSize: number; failureThreshold: number; allowDowngrade: boolean }, actor: AuditActor, record: AuditLog['record']) {
      const { rows: [img] } = await q.query<{ device_kind: string; hardware_revision: string | null; version: string; approved_by: string | null }>(
        `SELECT device_kind, hardware_revision, version, approved_by FROM firmware_images WHERE sha256 = $1`,
        [input.sha256],
      );
      if (!img) throw new FirmwareErrors.NotFound(input.sha256);
      if (config.requireApproval && !img.approved_by) throw new FirmwareErrors.NotApproved(input.sha256);
      const t = input.target;
      if ('percent' in t && t.kind !== img.device_kind) throw new FirmwareErrors.NoTargets(`${t.kind} (the image is for ${img.device_kind})`);
      const { rows: candidates } = await q.query<{ id: string; firmware_version: string | null }>(
        `SELECT d.id, d.firmware_version FROM devices d JOIN units u ON u.id = d.unit_id
          WHERE d.kind = $1::unit_kind AND d.status = 'active' AND ($2::text IS NULL OR d.hardware_revision = $2)
            AND ($3::text[] IS NULL OR d.id = ANY($3::text[])) AND ($4::uuid IS NULL OR d.unit_id = $4) AND ($5::uuid IS NULL OR u.site_id = $5)
          ORDER BY d.id`,
        [img.device_kind, img.hardware_revision, 'devices' in t ? t.devices : null, 'unitId' in t ? t.unitId : null, 'siteId' in t ? t.siteId : null],
      );
      const { rows: [made] } = await q.query<{ id: string }>(
        `INSERT INTO firmware_rollouts (image_sha256, target, wave_size, failure_threshold, allow_downgrade, manifest_ttl_hours, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
        [input.sha256, JSON.stringify(t), input.waveSize, input.failureThreshold, input.allowDowngrade, config.manifestTtlHours, actor.actorId],
      );
      const id = made!.id;
      let chosen = candidates;
      if ('percent' in t) chosen = [...candidates].sort((a, b) => (rank(id, a.id) < rank(id, b.id) ? -1 : 1)).slice(0, Math.ceil((candidates.length * t.percent) / 100));
      if (chosen.length === 0) throw new FirmwareErrors.NoTargets(img.device_kind);
      let inWave = 0;
      let wave = 1;
      const plan = chosen.map((d) => {
        // The same version again or an older one: skipped, unless downgrades were allowed explicitly.
        const downgrade = d.firmware_version !== null && VERSION.test(d.firmware_version) && compareVersions(img.version, d.firmware_version) <= 0;
        if (downgrade && !input.allowDowngrade) return { id: d.id, wave: 0, status: 'skipped', reason: compareVersions(img.version, d.firmware_version!) === 0 ? 'ALREADY_INSTALLED' : 'DOWNGRADE_REFUSED', from: d.firmware_version };
        if (inWave === input.waveSize) {
          wave++;
          inWave = 0;
        }
        inWave++;
        return { id: d.id, wave, status: 'pending', reason: null, from: d.firmware_version };
      });
      await q.query(
        `INSERT INTO firmware_rollout_devices (rollout_id, device_id, wave, status, reason, from_version) SELECT $1, * FROM unnest($2::text[], $3::int[], $4::text[], $5::text[], $6::text[])`,
        [id, plan.map((p) => p.id), plan.map((p) => p.wave), plan.map((p) => p.status), plan.map((p) => p.reason), plan.map((p) => p.from)],
      );
      const summary = { id, sha256: input.sha256, version: img.version, target: t, devices: plan.filter((p) => p.status === 'pending').length, skipped: plan.filter((p) => p.status === 'skipped').map((p) => ({ deviceId: p.id, reason: p.reason })), waves: wave, waveSize: input.waveSize, failureThreshold: input.failureThreshold };
      await record({ ...actor, action: 'firmware.rollout_create', targetType: 'firmware_rollout', targetId: id, after: summary });
      return summary;
    },

    async setRolloutStatus(q: Queryable, id: string, to: 'active' | 'paused', actor: AuditActor, record: AuditLog['record']) {
      const { rows: [r] } = await q.query<{ status: string }>(`SELECT status FROM firmware_rollouts WHERE id = $1 FOR UPDATE`, [id]);
      if (!r) throw new FirmwareErrors.RolloutNotFound(id);
      if (r.status === 'completed' || r.status === to) throw new FirmwareErrors.RolloutState(id, r.status);
      await q.query(`UPDATE firmware_rollouts SET status = $2, paused_reason = $3, updated_at = now() WHERE id = $1`, [id, to, to === 'paused' ? `paused by ${actor.actorId}` : null]);
      await record({ ...actor, action: to === 'paused' ? 'firmware.rollout_paused' : 'firmware.rollout_resumed', targetType: 'firmware_rollout', targetId: id, before: { status: r.status }, after: { status: to } });
      return { id, status: to };
    },

    rollout: readRollout,
  };
}

export type FirmwareRegistry = ReturnType<typeof createFirmwareRegistry>;
