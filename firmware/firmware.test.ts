import { generateKeyPairSync } from 'node:crypto';
import https from 'node:https';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBrokerFixture, type BrokerFixture, type DeviceCert } from '../test/broker-fixture.ts';
import { createDashboardQueries } from '../dashboards/dashboard-repo.ts';
import { dashboardPages } from '../dashboards/page-routes.ts';
import { timeseriesInfo } from '../db/timeseries.ts';
import { createStateHandler } from '../devices/state-handler.ts';
import { startDevice, type SimDevice } from '../simulators/device.ts';
import { createApiHarness, type ApiHarness } from '../test/api-harness.ts';
import { testLogger } from '../test/db.ts';
import { createFirmwareDownloadServer } from './download-server.ts';
import { createForeignCa } from '../test/forge-ca.ts';
import { normaliseSerial } from '../broker/index.ts';
import { firmwareRoutes } from './firmware-routes.ts';
import { createFirmwareService } from './firmware-service.ts';
import { signerFromKey, type SignedManifest } from './signing.ts';

/**
 * Signed firmware end to end, all real: the mTLS broker, the device-facing HTTPS download with
 * client certificates, the operator API (upload, four-eyes approval, rollout), simulated devices
 * verifying manifests and images. A man in the middle on the manifest path (the publisher
 * wrapper) tampers with what some devices receive.
 */
const signer = signerFromKey(generateKeyPairSync('ed25519').privateKey);
const attacker = signerFromKey(generateKeyPairSync('ed25519').privateKey);
const tamper = new Map<string, (m: SignedManifest) => SignedManifest>();

let fx: BrokerFixture;
let api: ApiHarness;
let downloads: ReturnType<typeof createFirmwareDownloadServer>;
const certs = new Map<string, DeviceCert>();
const devices = new Map<string, SimDevice>();
let uploader: string;
let firmwareService: ReturnType<typeof createFirmwareService> | undefined;
const service = () => firmwareService!;
let approver: string;

const dirs = new Map<string, string>();
/** The last payload the firmware service sent each device. */
const lastSent = new Map<string, string | Buffer>();
async function device(id: string): Promise<SimDevice> {
  const cert = await fx.addDevice(id);
  certs.set(id, cert);
  dirs.set(id, mkdtempSync(path.join(os.tmpdir(), `fw-${id}-`)));
  return restart(id);
}
/** The device (again), with its certificate and its state directory (firmware version, outbox). */
async function restart(id: string): Promise<SimDevice> {
  const cert = certs.get(id)!;
  const sim = await startDevice({
    identity: { id, kind: 'biodigester', key: cert.key, cert: cert.cert, serial: cert.serialHex },
    dir: dirs.get(id)!,
    url: `mqtts://localhost:${fx.port}`,
    ca: fx.caPem,
    rand: Math.random,
    firmwareKeyPem: signer.publicKeyPem,
    renewWithinDays: 0,
  });
  devices.set(id, sim);
  return sim;
}

function call(method: string, url: string, token: string, body?: unknown, contentType?: string) {
  return api.app.inject({
    method: method as 'GET',
    url: `/api/v1${url}`,
    headers: {
      authorization: `Bearer ${token}`,
      ...(contentType ? { 'content-type': contentType } : {}),
    },
    ...(body !== undefined ? { payload: body as string } : {}),
  });
}

async function upload(version: string, bytes: Buffer): Promise<string> {
  const res = await call(
    'POST',
    `/firmware?version=${version}&deviceKind=biodigester&releaseNotes=${encodeURIComponent(`release ${version}`)}`,
    uploader,
    bytes,
    'application/octet-stream',
  );
  expect(res.statusCode, res.body).toBe(201);
  return res.json<{ sha256: string }>().sha256;
}

function get(url: string, cert?: DeviceCert): Promise<number> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca: fx.caPem, ...(cert ? { key: cert.key, cert: cert.cert } : {}) }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
      .on('error', reject);
  });
}

async function rolloutOf(id: string) {
  return (await call('GET', `/firmware/rollouts/${id}`, uploader)).json<{
    status: string;
    pausedReason: string | null;
    devices: { deviceId: string; status: string; reason: string | null }[];
  }>();
}

beforeAll(async () => {
  fx = await startBrokerFixture(
    {},
    {
      state: (session, message) => state(session, message),
      onSubscribed: (id, suffixes) => {
        // As app/start.ts wires it: a failed resend (the database unreachable) is logged, not thrown.
        if (suffixes.includes('firmware/manifest'))
          created
            .resend(id)
            .catch((err: unknown) =>
              testLogger.warn(
                { err, deviceId: id },
                'could not send pending firmware manifests again',
              ),
            );
      },
    },
  );
  const state = createStateHandler({
    pool: fx.t.database.pool,
    publisher: fx.broker.publisher,
    onFirmwareReport: (deviceId, report) => created.report(deviceId, report),
  });
  const config = {
    maxImageBytes: 64 * 1024,
    requireApproval: true,
    manifestTtlHours: 1,
    downloadBaseUrl: '',
  };
  downloads = createFirmwareDownloadServer({
    tls: {
      key: fx.ca.server.privateKeyPem,
      cert: `${fx.ca.server.certPem.trim()}\n${fx.ca.issuing.certPem}`,
      ca: fx.ca.caPems,
      crl: await fx.crls(),
    },
    crl: () => fx.crls(),
    identity: fx.pki,
    firmware: { download: (...a) => created.download(...a) },
    securityEvents: fx.securityEvents,
    logger: testLogger,
  });
  config.downloadBaseUrl = `https://localhost:${await downloads.listen(0, '127.0.0.1')}`;
  const created = createFirmwareService({
    pool: fx.t.database.pool,
    audit: (await import('../audit/index.ts')).createAuditLog({
      db: fx.t.database.db,
      signer: (await import('../test/audit-key.ts')).testAuditSigner,
    }),
    securityEvents: fx.securityEvents,
    signer,
    publisher: {
      publish: (id, suffix, payload, opts) => {
        lastSent.set(id, payload);
        return fx.broker.publisher.publish(
          id,
          suffix,
          tamper.has(id)
            ? JSON.stringify(tamper.get(id)!(JSON.parse(String(payload)) as SignedManifest))
            : payload,
          opts,
        );
      },
    },
    config,
    logger: testLogger,
  });
  firmwareService = created;
  const queries = createDashboardQueries({ mode: (await timeseriesInfo(fx.t.database.pool)).mode });
  api = await createApiHarness(
    {
      routes: ({ audit, db }) => [
        {
          plugin: firmwareRoutes({
            db,
            audit,
            firmware: created,
            maxImageBytes: config.maxImageBytes,
          }),
        },
        { plugin: dashboardPages({ db, queries }), root: true },
      ],
    },
    { t: fx.t },
  );
  uploader = await api.tokenFor('technician');
  approver = await api.tokenFor('admin');
}, 120_000);

afterAll(async () => {
  for (const d of devices.values()) await d.stop();
  await downloads?.close();
  await fx?.close();
});

describe('signed firmware', () => {
  let good: string;
  let rolloutId: string;

  it('is uploaded once, content-addressed, and approved only by a second person', async () => {
    good = await upload('1.1.0', Buffer.from('THAMANI-FW 1.1.0 '.repeat(500)));
    expect(
      (
        await call(
          'POST',
          '/firmware?version=1.1.1&deviceKind=biodigester',
          uploader,
          Buffer.from('THAMANI-FW 1.1.0 '.repeat(500)),
          'application/octet-stream',
        )
      ).json<{ code: string }>().code,
    ).toBe('FIRMWARE_EXISTS');
    expect(
      (
        await call(
          'POST',
          '/firmware?version=1.1&deviceKind=biodigester',
          uploader,
          Buffer.from('x'),
          'application/octet-stream',
        )
      ).json<{ code: string }>().code,
    ).toBe('FIRMWARE_INVALID_VERSION');
    expect(
      (
        await call(
          'POST',
          '/firmware?version=9.9.9&deviceKind=biodigester',
          uploader,
          Buffer.alloc(65 * 1024),
          'application/octet-stream',
        )
      ).statusCode,
    ).toBe(413);
    expect(
      (
        await call(
          'POST',
          '/firmware?version=9.9.9&deviceKind=biodigester',
          await api.tokenFor('kitchen_manager'),
          Buffer.from('x'),
          'application/octet-stream',
        )
      ).statusCode,
    ).toBe(403);
    // Not approved yet: no rollout.
    expect(
      (
        await call('POST', '/firmware/rollouts', uploader, {
          sha256: good,
          target: { kind: 'biodigester', percent: 100 },
        })
      ).json<{ code: string }>().code,
    ).toBe('FIRMWARE_NOT_APPROVED');
    expect(
      (await call('POST', `/firmware/${good}/approve`, uploader)).json<{ code: string }>().code,
    ).toBe('FIRMWARE_FOUR_EYES');
    expect((await call('POST', `/firmware/${good}/approve`, approver)).statusCode).toBe(200);
    // Immutable, even for the owner.
    await expect(
      fx.t.database.pool.query(`UPDATE firmware_images SET version = '2.0.0' WHERE sha256 = $1`, [
        good,
      ]),
    ).rejects.toThrow(/immutable/);
    await expect(
      fx.t.database.pool.query(`DELETE FROM firmware_images WHERE sha256 = $1`, [good]),
    ).rejects.toThrow(/immutable/);
  });

  it('rolls out in waves to simulated devices, which all report the new version', async () => {
    for (const id of ['bd-fw-1', 'bd-fw-2', 'bd-fw-3']) await device(id);
    const old = await device('bd-fw-new');
    await expect
      .poll(() =>
        fx.t.database.pool
          .query(`SELECT count(*)::int AS n FROM devices WHERE firmware_version = '1.0.0'`)
          .then((r) => r.rows[0].n as number),
      )
      .toBe(4);
    // This one already runs something newer: rolling 1.1.0 to it is a downgrade, refused.
    await fx.t.database.pool.query(
      `UPDATE devices SET firmware_version = '1.2.0' WHERE id = 'bd-fw-new'`,
    );
    const res = await call('POST', '/firmware/rollouts', uploader, {
      sha256: good,
      target: { devices: ['bd-fw-1', 'bd-fw-2', 'bd-fw-3', 'bd-fw-new'] },
      waveSize: 2,
      failureThreshold: 0.5,
    });
    expect(res.statusCode, res.body).toBe(201);
    const made = res.json<{
      id: string;
      devices: number;
      waves: number;
      skipped: { deviceId: string; reason: string }[];
    }>();
    rolloutId = made.id;
    expect(made).toMatchObject({
      devices: 3,
      waves: 2,
      skipped: [{ deviceId: 'bd-fw-new', reason: 'DOWNGRADE_REFUSED' }],
    });
    await expect.poll(async () => (await rolloutOf(rolloutId)).status).toBe('completed');
    const done = await rolloutOf(rolloutId);
    expect(done.devices.filter((d) => d.status === 'installed').map((d) => d.deviceId)).toEqual([
      'bd-fw-1',
      'bd-fw-2',
      'bd-fw-3',
    ]);
    for (const id of ['bd-fw-1', 'bd-fw-2', 'bd-fw-3'])
      expect(devices.get(id)!.firmware.version()).toBe('1.1.0');
    expect(old.firmware.version()).toBe('1.0.0');
    const { rows } = await fx.t.database.pool.query<{ id: string; firmware_version: string }>(
      `SELECT id, firmware_version FROM devices WHERE id LIKE 'bd-fw-%' ORDER BY id`,
    );
    expect(rows.map((r) => r.firmware_version)).toEqual(['1.1.0', '1.1.0', '1.1.0', '1.2.0']);
    // The technicians' firmware page shows the release and the finished rollout, device by device.
    const page = await api.app.inject({
      method: 'GET',
      url: '/firmware',
      headers: { authorization: `Bearer ${uploader}` },
    });
    expect(page.statusCode).toBe(200);
    expect(page.body).toMatch(/1\.1\.0 · biodigester.*completed.*3\/3/s);
    const detail = await api.app.inject({
      method: 'GET',
      url: `/firmware/rollouts/${rolloutId}`,
      headers: { authorization: `Bearer ${uploader}` },
    });
    expect(detail.body).toMatch(
      /bd-fw-new<\/a><\/td><td>—<\/td><td><span class="badge unknown">skipped<\/span><\/td><td>DOWNGRADE_REFUSED/,
    );
    const audit = await fx.t.database.pool.query<{ action: string }>(
      `SELECT DISTINCT action FROM audit_log WHERE action LIKE 'firmware.%' ORDER BY action`,
    );
    expect(audit.rows.map((r) => r.action)).toEqual([
      'firmware.approve',
      'firmware.device_report',
      'firmware.download',
      'firmware.manifest_sent',
      'firmware.rollout_completed',
      'firmware.rollout_create',
      'firmware.upload',
    ]);
  });

  it('sends a manifest again when the device subscribes before answering it (the broker lost the queued one, as on a restart)', async () => {
    const sim = await device('bd-fw-lost');
    await expect
      .poll(() =>
        fx.t.database.pool
          .query(`SELECT firmware_version FROM devices WHERE id = 'bd-fw-lost'`)
          .then((r) => r.rows[0]?.firmware_version as string | undefined),
      )
      .toBe('1.0.0');
    await sim.stop(); // offline; the broker keeps its persistent session
    const res = await call('POST', '/firmware/rollouts', uploader, {
      sha256: good,
      target: { devices: ['bd-fw-lost'] },
    });
    expect(res.statusCode, res.body).toBe(201);
    const id = res.json<{ id: string }>().id;
    await expect.poll(async () => (await rolloutOf(id)).devices[0]?.status).toBe('sent');
    // A device that floods SUBSCRIBEs costs one lookup a second, not one each: of a burst (all
    // asked in the same instant, however slow the machine) one is answered.
    await new Promise((r) => setTimeout(r, 1100));
    const burst = await Promise.all(
      Array.from({ length: 5 }, () => service().resend('bd-fw-lost')),
    );
    expect(burst.sort()).toEqual([0, 0, 0, 0, 1]);
    await new Promise((r) => setTimeout(r, 1100));
    // The broker loses what it queued for the device, as a gateway restart would: a clean session
    // under the device's identity discards the persistent one [MQTT-3.1.2-6].
    const wipe = await fx.connect(certs.get('bd-fw-lost')!, {
      clientId: 'bd-fw-lost',
      clean: true,
    });
    await wipe.endAsync();
    // Back with a persistent session that is no longer there: it subscribes, and the manifest comes again.
    const back = await restart('bd-fw-lost');
    await expect.poll(async () => (await rolloutOf(id)).status).toBe('completed');
    expect((await rolloutOf(id)).devices.map((d) => [d.deviceId, d.status])).toEqual([
      ['bd-fw-lost', 'installed'],
    ]);
    expect(back.firmware.version()).toBe('1.1.0');
    expect(back.firmware.outcomes.filter((o) => o.rolloutId === id)).toEqual([
      { rolloutId: id, status: 'installed' },
    ]);
    // The same manifest once more (a queued copy and a resend can both arrive): acted on once.
    const downloads = async (): Promise<number> =>
      (
        await fx.t.database.pool.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM audit_log WHERE action = 'firmware.download' AND actor_id = 'device:bd-fw-lost'`,
        )
      ).rows[0]!.n;
    expect(await downloads()).toBe(1);
    await fx.broker.publisher.publish(
      'bd-fw-lost',
      'firmware/manifest',
      lastSent.get('bd-fw-lost')!,
      { qos: 1 },
    );
    await new Promise((r) => setTimeout(r, 500));
    expect(back.firmware.outcomes.filter((o) => o.rolloutId === id)).toHaveLength(1);
    expect(await downloads()).toBe(1);
  });

  it("serves an image only to a device it is targeted to (another device's certificate gets 403)", async () => {
    const url = `${downloadsUrl()}/firmware/${good}`;
    expect(await get(url, certs.get('bd-fw-1'))).toBe(200);
    expect(await get(url, certs.get('bd-fw-new'))).toBe(403);
    expect(await get(`${downloadsUrl()}/firmware/${'0'.repeat(64)}`, certs.get('bd-fw-1'))).toBe(
      403,
    );
    // No client certificate, or one from a foreign CA: refused right after the handshake, before
    // any request is read, and recorded with the certificate presented.
    await expect(get(url)).rejects.toThrow();
    const foreign = createForeignCa('Evil CA').issue({ cn: 'bd-fw-evil' });
    await expect(get(url, { ...foreign, serialHex: foreign.serialHex })).rejects.toThrow();
    await fx.securityEvents.flush();
    const tlsRefused = await fx.t.database.pool.query<{
      actor_id: string;
      after: { reason: string; certSerial: string | null };
    }>(
      `SELECT actor_id, after FROM audit_log WHERE action = 'security.tls_refused' AND target_type = 'firmware-https' ORDER BY id`,
    );
    expect(tlsRefused.rows.map((r) => r.after.reason)).toContain('NO_CERTIFICATE');
    expect(tlsRefused.rows.map((r) => r.after.certSerial)).toContain(
      normaliseSerial(foreign.serialHex),
    );
    await fx.securityEvents.flush();
    const denied = await fx.t.database.pool.query(
      `SELECT actor_id FROM audit_log WHERE action = 'security.firmware_download_denied'`,
    );
    expect(denied.rows.map((r: { actor_id: string }) => r.actor_id)).toContain('device:bd-fw-new');
  });

  it('has devices refuse a tampered image, a tampered manifest, another key and an expired manifest, and pauses the rollout', async () => {
    const ids = ['bd-fw-t1', 'bd-fw-t2', 'bd-fw-t3', 'bd-fw-t4', 'bd-fw-t5', 'bd-fw-t6'];
    for (const id of ids) await device(id);
    const next = await upload('1.2.0', Buffer.from('THAMANI-FW 1.2.0 '.repeat(400)));
    expect((await call('POST', `/firmware/${next}/approve`, approver)).statusCode).toBe(200);
    tamper.set('bd-fw-t1', (m) => ({ ...m, manifest: { ...m.manifest, version: '9.9.9' } }));
    tamper.set('bd-fw-t2', (m) => attacker.sign(m.manifest));
    tamper.set('bd-fw-t3', (m) => ({ ...attacker.sign(m.manifest), keyId: m.keyId }));
    tamper.set('bd-fw-t4', (m) =>
      signer.sign({ ...m.manifest, expiresAt: new Date(Date.now() - 60_000).toISOString() }),
    );
    // The stored image altered behind the registry's back (an attacker with database access).
    await fx.t.database.pool.query(
      `ALTER TABLE firmware_images DISABLE TRIGGER firmware_images_immutable`,
    );
    // bd-fw-t5 downloads bytes that no longer match the signed hash.
    await fx.t.database.pool.query(
      `UPDATE firmware_images SET image = overlay(image placing 'EVIL' from 1) WHERE sha256 = $1`,
      [next],
    );
    await fx.t.database.pool.query(
      `ALTER TABLE firmware_images ENABLE TRIGGER firmware_images_immutable`,
    );
    const res = await call('POST', '/firmware/rollouts', uploader, {
      sha256: next,
      target: { devices: ids },
      waveSize: 5,
      failureThreshold: 0.8,
    });
    expect(res.statusCode, res.body).toBe(201);
    const id = res.json<{ id: string }>().id;
    await expect.poll(async () => (await rolloutOf(id)).status).toBe('paused');
    await expect
      .poll(async () => (await rolloutOf(id)).devices.filter((d) => d.status === 'failed').length)
      .toBe(5);
    const r = await rolloutOf(id);
    const reasons = Object.fromEntries(
      r.devices.map((d) => [d.deviceId, `${d.status}:${d.reason ?? ''}`]),
    );
    expect(reasons).toEqual({
      'bd-fw-t1': 'failed:BAD_SIGNATURE',
      'bd-fw-t2': 'failed:UNKNOWN_KEY',
      'bd-fw-t3': 'failed:BAD_SIGNATURE',
      'bd-fw-t4': 'failed:EXPIRED',
      'bd-fw-t5': 'failed:HASH_MISMATCH',
      // The second wave never went out.
      'bd-fw-t6': 'pending:',
    });
    expect(r.pausedReason).toMatch(/5 of 5 devices failed \(threshold 80 %\)/);
    for (const d of ids) expect(devices.get(d)!.firmware.version()).toBe('1.0.0');
    // Paused: even a device that was sent the manifest cannot download the image any more.
    expect(await get(`${downloadsUrl()}/firmware/${next}`, certs.get('bd-fw-t5'))).toBe(403);
    const paused = await fx.t.database.pool.query(
      `SELECT actor_id, after FROM audit_log WHERE action = 'firmware.rollout_paused'`,
    );
    expect(paused.rows[0]).toMatchObject({ actor_id: 'system', after: { automatic: true } });
  });
});

describe('rollout targets', () => {
  /** The planning step alone, in a transaction rolled back: nothing is sent. */
  async function plan(target: Record<string, unknown>, allowDowngrade = false) {
    const client = await fx.t.database.pool.connect();
    try {
      await client.query('BEGIN');
      const sha = (
        await client.query<{ sha256: string }>(
          `SELECT sha256 FROM firmware_images WHERE version = '1.1.0'`,
        )
      ).rows[0]!.sha256;
      const made = await service().createRollout(
        client,
        {
          sha256: sha,
          target: target as never,
          waveSize: 3,
          failureThreshold: 0.2,
          allowDowngrade,
        },
        { actorId: 'test', actorRole: 'technician' },
        () => Promise.resolve({ id: 0, hash: Buffer.alloc(0) }),
      );
      const { rows } = await client.query<{ device_id: string; wave: number; status: string }>(
        `SELECT device_id, wave, status FROM firmware_rollout_devices WHERE rollout_id = $1 ORDER BY device_id`,
        [made.id],
      );
      return { made, rows };
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  }

  it('takes a unit, a site, or the same share of a kind every time; a downgrade only when allowed', async () => {
    const {
      rows: [where],
    } = await fx.t.database.pool.query<{ unit_id: string; site_id: string }>(
      `SELECT d.unit_id, u.site_id FROM devices d JOIN units u ON u.id = d.unit_id WHERE d.id = 'bd-fw-1'`,
    );
    const active = (
      await fx.t.database.pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM devices WHERE status = 'active' AND kind = 'biodigester'`,
      )
    ).rows[0]!.n;
    const byUnit = await plan({ unitId: where!.unit_id });
    const bySite = await plan({ siteId: where!.site_id });
    expect(byUnit.rows).toHaveLength(active);
    expect(bySite.rows).toHaveLength(active);
    // Waves of 3, in order; devices already on 1.1.0 or newer are skipped.
    expect(byUnit.rows.filter((r) => r.status === 'pending').every((r) => r.wave >= 1)).toBe(true);
    expect(byUnit.rows.filter((r) => r.status === 'skipped').map((r) => r.device_id)).toEqual([
      'bd-fw-1',
      'bd-fw-2',
      'bd-fw-3',
      'bd-fw-lost',
      'bd-fw-new',
    ]);
    const half = await plan({ kind: 'biodigester', percent: 50 });
    expect(half.rows).toHaveLength(Math.ceil(active / 2));
    await expect(plan({ kind: 'collection_point', percent: 50 })).rejects.toThrow(
      /FIRMWARE_NO_TARGETS|No active/,
    );
    const downgrade = await plan({ devices: ['bd-fw-new'] }, true);
    expect(downgrade.rows).toEqual([{ device_id: 'bd-fw-new', wave: 1, status: 'pending' }]);
  });
});

function downloadsUrl(): string {
  return `https://localhost:${(downloads.server.address() as { port: number }).port}`;
}
