import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../api/app.ts';
import { scopedServices } from '../api/scoped-services.ts';
import { createAuditLog } from '../audit/index.ts';
import { testAuditSigner } from './audit-key.ts';
import { createAdminTokenAuthenticator } from '../auth/admin-token.ts';
import { deviceRoutes } from '../devices/device-routes.ts';
import { createDeviceService, type DeviceService } from '../devices/device-service.ts';
import { createTestDatabase, testLogger, type TestDatabase } from './db.ts';
import { loadOrCreateCa, type LoadedCa } from '../provisioning/ca-store.ts';
import type { EnrolmentLimits } from '../provisioning/enrolment-guard.ts';
import { pkiRoutes } from '../provisioning/pki-routes.ts';
import { createPki, type Pki } from '../provisioning/pki-service.ts';

export const ADMIN_TOKEN = 'test-admin-token-0123456789abcdefghijklmnop';
export const PASSPHRASE = 'a test passphrase, long enough';

export interface PkiFixture {
  t: TestDatabase;
  dir: string;
  ca: LoadedCa;
  pki: Pki;
  devices: DeviceService;
  app: FastifyInstance;
  baseUrl: string;
  now: { value: Date | undefined };
  admin: { actorId: string; actorRole: string };
  /** A site, a biodigester unit and a device on it. */
  addDevice(id: string): Promise<void>;
}

export async function startPkiFixture(
  opts: { enrolmentLimits?: EnrolmentLimits } = {},
): Promise<PkiFixture> {
  const t = await createTestDatabase();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'thamani-pki-'));
  const ca = await loadOrCreateCa({
    dir,
    passphrase: PASSPHRASE,
    serverNames: ['localhost', '127.0.0.1'],
    serverCertDays: 30,
    logger: testLogger,
  });
  const audit = createAuditLog({ db: t.database.db, signer: testAuditSigner });
  const now: PkiFixture['now'] = { value: undefined };
  const pkiConfig = {
    passphrase: PASSPHRASE,
    dir,
    deviceCertDays: 397,
    serverCertDays: 30,
    enrolmentTokenHours: 24,
    renewalWindowDays: 30,
    rotationOverlapHours: 24,
  };
  const pki = createPki({
    db: t.database.db,
    ca,
    audit,
    config: pkiConfig,
    brokerUrl: 'mqtts://localhost:8883',
    now: () => now.value ?? new Date(),
  });
  const devices = createDeviceService({ db: t.database.db, audit });
  const app = await buildApp({
    logger: testLogger,
    authenticator: createAdminTokenAuthenticator(ADMIN_TOKEN),
    https: {
      key: ca.server.privateKeyPem,
      cert: `${ca.server.certPem.trim()}\n${ca.issuing.certPem}`,
    },
    routes: [
      {
        plugin: pkiRoutes({
          pki,
          ca,
          scoped: scopedServices(t.database.db, (tx) =>
            createPki({
              db: tx,
              ca,
              audit,
              config: pkiConfig,
              brokerUrl: 'mqtts://localhost:8883',
              now: () => now.value ?? new Date(),
            }),
          ),
          // Generous unless a test is about the throttle: other tests enrol and fail many times from 127.0.0.1.
          enrolment: {
            audit,
            limits: opts.enrolmentLimits ?? {
              maxAttemptsPerAddress: 100_000,
              maxFailuresPerAddress: 100_000,
              windowMs: 60_000,
            },
          },
        }),
      },
      {
        plugin: deviceRoutes({
          devices: scopedServices(t.database.db, (tx) => createDeviceService({ db: tx, audit })),
        }),
      },
    ],
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const admin = { actorId: 'test-admin', actorRole: 'admin' };
  const site = await devices.addSite({ name: `Site ${path.basename(dir)}` }, admin);
  const unit = await devices.addUnit(
    { site: site.id, kind: 'biodigester', name: 'Digester 1' },
    admin,
  );
  return {
    t,
    dir,
    ca,
    pki,
    devices,
    app,
    baseUrl: `https://localhost:${(app.server.address() as AddressInfo).port}/api/v1`,
    now,
    admin,
    async addDevice(id) {
      await devices.addDevice({ id, unit: unit.id }, admin);
    },
  };
}
