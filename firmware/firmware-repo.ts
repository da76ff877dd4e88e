import type { Queryable } from '../db/timeseries.ts';

export type RolloutTarget =
  | { devices: string[] }
  | { unitId: string }
  | { siteId: string }
  | { kind: 'biodigester' | 'collection_point'; percent: number };

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
  devices: {
    deviceId: string;
    wave: number;
    status: string;
    reason: string | null;
    fromVersion: string | null;
    sentAt: string | null;
    updatedAt: string;
  }[];
}

/**
 * The SQL of firmware: images, rollouts and each device's progress in one. Every function takes
 * the query handle it runs on: the caller's scoped transaction (API, CLI) for the registry, the
 * pool for the gateway's rollout engine.
 */

export interface ImageFacts {
  device_kind: string;
  hardware_revision: string | null;
  version: string;
  size: number;
}

export const firmwareRepo = {
  /** Uploaded images, newest first, without their bytes. */
  images: async (q: Queryable): Promise<ImageView[]> =>
    (
      await q.query<ImageView>(
        `SELECT sha256, device_kind AS "deviceKind", hardware_revision AS "hardwareRevision", version, size, release_notes AS "releaseNotes", uploaded_by AS "uploadedBy", uploaded_at AS "uploadedAt", approved_by AS "approvedBy", approved_at AS "approvedAt"
           FROM firmware_images ORDER BY uploaded_at DESC`,
      )
    ).rows,

  rollout: async (q: Queryable, id: string) =>
    (
      await q.query<Omit<RolloutView, 'devices'>>(
        `SELECT r.id, r.image_sha256 AS sha256, i.version, r.status, r.paused_reason AS "pausedReason", r.wave_size AS "waveSize", r.failure_threshold AS "failureThreshold", r.target, r.created_by AS "createdBy", r.created_at AS "createdAt"
           FROM firmware_rollouts r JOIN firmware_images i ON i.sha256 = r.image_sha256 WHERE r.id = $1`,
        [id],
      )
    ).rows[0],

  rolloutDevices: async (q: Queryable, id: string) =>
    (
      await q.query<RolloutView['devices'][number]>(
        `SELECT device_id AS "deviceId", wave, status, reason, from_version AS "fromVersion", sent_at AS "sentAt", updated_at AS "updatedAt" FROM firmware_rollout_devices WHERE rollout_id = $1 ORDER BY wave, device_id`,
        [id],
      )
    ).rows,

  /** An image with these bytes, or of this kind, hardware revision and version. */
  sameImage: async (
    q: Queryable,
    i: { sha256: string; deviceKind: string; hardwareRevision: string | null; version: string },
  ) =>
    (
      await q.query<{ sha256: string; version: string }>(
        `SELECT sha256, version FROM firmware_images WHERE sha256 = $1 OR (device_kind = $2 AND hardware_revision IS NOT DISTINCT FROM $3 AND version = $4)`,
        [i.sha256, i.deviceKind, i.hardwareRevision, i.version],
      )
    ).rows[0],

  async insertImage(
    q: Queryable,
    i: {
      sha256: string;
      deviceKind: string;
      hardwareRevision: string | null;
      version: string;
      releaseNotes: string;
      image: Buffer;
      uploadedBy: string;
    },
  ): Promise<void> {
    await q.query(
      `INSERT INTO firmware_images (sha256, device_kind, hardware_revision, version, size, release_notes, image, uploaded_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [
        i.sha256,
        i.deviceKind,
        i.hardwareRevision,
        i.version,
        i.image.length,
        i.releaseNotes,
        i.image,
        i.uploadedBy,
      ],
    );
  },

  /** The image's uploader and approver, locked for an approval in this transaction. */
  lockForApproval: async (q: Queryable, sha256: string) =>
    (
      await q.query<{ uploaded_by: string; approved_by: string | null }>(
        `SELECT uploaded_by, approved_by FROM firmware_images WHERE sha256 = $1 FOR UPDATE`,
        [sha256],
      )
    ).rows[0],

  async approve(q: Queryable, sha256: string, by: string): Promise<void> {
    await q.query(
      `UPDATE firmware_images SET approved_by = $2, approved_at = now() WHERE sha256 = $1`,
      [sha256, by],
    );
  },

  image: async (q: Queryable, sha256: string) =>
    (
      await q.query<ImageFacts & { approved_by: string | null }>(
        `SELECT device_kind, hardware_revision, version, size, approved_by FROM firmware_images WHERE sha256 = $1`,
        [sha256],
      )
    ).rows[0],

  /** Active devices of the kind (and hardware revision) that the target names, by id. */
  candidates: async (
    q: Queryable,
    c: {
      kind: string;
      hardwareRevision: string | null;
      devices: string[] | null;
      unitId: string | null;
      siteId: string | null;
    },
  ) =>
    (
      await q.query<{ id: string; firmware_version: string | null }>(
        `SELECT d.id, d.firmware_version FROM devices d JOIN units u ON u.id = d.unit_id
          WHERE d.kind = $1::unit_kind AND d.status = 'active' AND ($2::text IS NULL OR d.hardware_revision = $2)
            AND ($3::text[] IS NULL OR d.id = ANY($3::text[])) AND ($4::uuid IS NULL OR d.unit_id = $4) AND ($5::uuid IS NULL OR u.site_id = $5)
          ORDER BY d.id`,
        [c.kind, c.hardwareRevision, c.devices, c.unitId, c.siteId],
      )
    ).rows,

  async insertRollout(
    q: Queryable,
    r: {
      sha256: string;
      target: unknown;
      waveSize: number;
      failureThreshold: number;
      allowDowngrade: boolean;
      manifestTtlHours: number;
      createdBy: string;
    },
  ): Promise<string> {
    const {
      rows: [made],
    } = await q.query<{ id: string }>(
      `INSERT INTO firmware_rollouts (image_sha256, target, wave_size, failure_threshold, allow_downgrade, manifest_ttl_hours, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
      [
        r.sha256,
        JSON.stringify(r.target),
        r.waveSize,
        r.failureThreshold,
        r.allowDowngrade,
        r.manifestTtlHours,
        r.createdBy,
      ],
    );
    return made!.id;
  },

  async insertPlan(
    q: Queryable,
    rolloutId: string,
    plan: {
      id: string;
      wave: number;
      status: string;
      reason: string | null;
      from: string | null;
    }[],
  ): Promise<void> {
    await q.query(
      `INSERT INTO firmware_rollout_devices (rollout_id, device_id, wave, status, reason, from_version) SELECT $1, * FROM unnest($2::text[], $3::int[], $4::text[], $5::text[], $6::text[])`,
      [
        rolloutId,
        plan.map((p) => p.id),
        plan.map((p) => p.wave),
        plan.map((p) => p.status),
        plan.map((p) => p.reason),
        plan.map((p) => p.from),
      ],
    );
  },

  lockRolloutStatus: async (q: Queryable, id: string) =>
    (
      await q.query<{ status: string }>(
        `SELECT status FROM firmware_rollouts WHERE id = $1 FOR UPDATE`,
        [id],
      )
    ).rows[0],

  async setRolloutStatus(
    q: Queryable,
    id: string,
    status: string,
    pausedReason: string | null,
  ): Promise<void> {
    await q.query(
      `UPDATE firmware_rollouts SET status = $2, paused_reason = $3, updated_at = now() WHERE id = $1`,
      [id, status, pausedReason],
    );
  },

  /** The device kind an image is for (the CLI's `--percent` target). */
  imageKind: async (q: Queryable, sha256: string) =>
    (
      await q.query<{ device_kind: string }>(
        `SELECT device_kind FROM firmware_images WHERE sha256 = $1`,
        [sha256],
      )
    ).rows[0]?.device_kind,

  // The rollout engine (firmware-service.ts), on the pool.

  /**
   * Claims a pending device for its manifest: true for exactly one caller, however many nodes
   * tick at once (the row lock serialises them and the second sees it no longer pending).
   */
  async claimSend(q: Queryable, rolloutId: string, deviceId: string, at: Date): Promise<boolean> {
    const r = await q.query(
      `UPDATE firmware_rollout_devices SET status = 'sent', sent_at = $3, updated_at = now() WHERE rollout_id = $1 AND device_id = $2 AND status = 'pending' RETURNING 1`,
      [rolloutId, deviceId, at],
    );
    return r.rows.length === 1;
  },

  activeRollouts: async (q: Queryable) =>
    (
      await q.query<{
        id: string;
        image_sha256: string;
        manifest_ttl_hours: number;
        failure_threshold: number;
      }>(
        `SELECT id, image_sha256, manifest_ttl_hours, failure_threshold FROM firmware_rollouts WHERE status = 'active' ORDER BY created_at`,
      )
    ).rows,

  /** A manifest nobody acted on before it expired is a failure of that device. */
  async timeOut(q: Queryable, rolloutId: string, at: Date, ttlHours: number): Promise<void> {
    await q.query(
      `UPDATE firmware_rollout_devices SET status = 'failed', reason = 'TIMEOUT', updated_at = now()
        WHERE rollout_id = $1 AND status IN ('sent', 'downloading', 'verifying') AND sent_at < $2::timestamptz - make_interval(hours => $3)`,
      [rolloutId, at, ttlHours],
    );
  },

  progress: async (q: Queryable, rolloutId: string) =>
    (
      await q.query<{ device_id: string; wave: number; status: string }>(
        `SELECT device_id, wave, status FROM firmware_rollout_devices WHERE rollout_id = $1`,
        [rolloutId],
      )
    ).rows,

  /** True when this call paused it (it was active): one audit entry however many nodes tick. */
  async pauseActive(q: Queryable, id: string, reason: string): Promise<boolean> {
    const r = await q.query(
      `UPDATE firmware_rollouts SET status = 'paused', paused_reason = $2, updated_at = now() WHERE id = $1 AND status = 'active' RETURNING 1`,
      [id, reason],
    );
    return r.rows.length === 1;
  },

  /** True when this call completed it (it was active). */
  async completeActive(q: Queryable, id: string): Promise<boolean> {
    const r = await q.query(
      `UPDATE firmware_rollouts SET status = 'completed', updated_at = now() WHERE id = $1 AND status = 'active' RETURNING 1`,
      [id],
    );
    return r.rows.length === 1;
  },

  /** The device's place in a rollout, with the version it rolls out. */
  deviceInRollout: async (q: Queryable, rolloutId: string, deviceId: string) =>
    (
      await q.query<{ status: string; version: string }>(
        `SELECT d.status, i.version FROM firmware_rollout_devices d JOIN firmware_rollouts r ON r.id = d.rollout_id JOIN firmware_images i ON i.sha256 = r.image_sha256
          WHERE d.rollout_id = $1 AND d.device_id = $2`,
        [rolloutId, deviceId],
      )
    ).rows[0],

  async setDeviceProgress(
    q: Queryable,
    rolloutId: string,
    deviceId: string,
    status: string,
    reason: string | null,
  ): Promise<void> {
    await q.query(
      `UPDATE firmware_rollout_devices SET status = $3, reason = $4, updated_at = now() WHERE rollout_id = $1 AND device_id = $2`,
      [rolloutId, deviceId, status, reason],
    );
  },

  async setInstalledVersion(q: Queryable, deviceId: string, version: string): Promise<void> {
    await q.query(`UPDATE devices SET firmware_version = $2, updated_at = now() WHERE id = $1`, [
      deviceId,
      version,
    ]);
  },

  /** Manifests of active rollouts sent to the device, unanswered and not yet expired. */
  unansweredManifests: async (q: Queryable, deviceId: string, at: Date) =>
    (
      await q.query<
        ImageFacts & { id: string; image_sha256: string; manifest_ttl_hours: number; sent_at: Date }
      >(
        `SELECT r.id, r.image_sha256, r.manifest_ttl_hours, d.sent_at, i.device_kind, i.hardware_revision, i.version, i.size
           FROM firmware_rollout_devices d JOIN firmware_rollouts r ON r.id = d.rollout_id JOIN firmware_images i ON i.sha256 = r.image_sha256
          WHERE d.device_id = $1 AND d.status = 'sent' AND r.status = 'active' AND d.sent_at + make_interval(hours => r.manifest_ttl_hours) > $2::timestamptz`,
        [deviceId, at],
      )
    ).rows,

  /** The image, if a rollout sent it to this device (an active one first). */
  downloadFor: async (q: Queryable, deviceId: string, sha256: string) =>
    (
      await q.query<{ image: Buffer; status: string }>(
        `SELECT i.image, r.status FROM firmware_rollout_devices d JOIN firmware_rollouts r ON r.id = d.rollout_id JOIN firmware_images i ON i.sha256 = r.image_sha256
          WHERE d.device_id = $1 AND r.image_sha256 = $2 AND d.status NOT IN ('pending', 'skipped') ORDER BY r.status = 'active' DESC LIMIT 1`,
        [deviceId, sha256],
      )
    ).rows[0],
};
