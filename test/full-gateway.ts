import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gatewayRoutes } from '../app/gateway-routes.ts';
import { createAuditLog, createSecurityEvents } from '../audit/index.ts';
import { testAuditSigner } from './audit-key.ts';
import { testIngestConfig } from './broker-fixture.ts';
import { createIngest } from '../ingest/index.ts';
import { createDashboardQueries } from '../dashboards/dashboard-repo.ts';
import { createLiveHub } from '../dashboards/live-hub.ts';
import { timeseriesInfo } from '../db/timeseries.ts';
import { createFirmwareService } from '../firmware/firmware-service.ts';
import { signerFromKey } from '../firmware/signing.ts';
import { mrvSignerFromKey } from '../mrv/index.ts';
import { createPki, loadOrCreateCa } from '../provisioning/index.ts';
import { createTestDatabase, testLogger } from './db.ts';
import { createApiHarness, type ApiHarness } from './api-harness.ts';

/**
 * The operator API with every route `thamani start` mounts (PKI, devices, quarantine, firmware,
 * MRV, dashboards and their pages), on a test database of its own: for tests that walk every
 * route (the role × route matrix, the catalogue's page check, the technician's forms).
 */
export async function createFullGateway(): Promise<ApiHarness> {
  const owner = await createTestDatabase();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'thamani-matrix-'));
  const pkiConfig = {
    passphrase: 'matrix test passphrase',
    dir,
    deviceCertDays: 30,
    serverCertDays: 30,
    enrolmentTokenHours: 1,
    renewalWindowDays: 1,
    rotationOverlapHours: 1,
  };
  const ca = await loadOrCreateCa({
    dir,
    passphrase: pkiConfig.passphrase,
    serverNames: ['localhost'],
    serverCertDays: 30,
    logger: testLogger,
  });
  const pki = createPki({
    db: owner.database.db,
    ca,
    audit: createAuditLog({ db: owner.database.db, signer: testAuditSigner }),
    config: pkiConfig,
    brokerUrl: '',
  });
  const ingest = createIngest({
    pool: owner.database.pool,
    logger: testLogger,
    config: testIngestConfig,
    publisher: { publish: () => Promise.resolve() },
  });
  const dashboards = {
    queries: createDashboardQueries({ mode: (await timeseriesInfo(owner.database.pool)).mode }),
    hub: createLiveHub(),
  };
  const firmware = createFirmwareService({
    pool: owner.database.pool,
    audit: createAuditLog({ db: owner.database.db, signer: testAuditSigner }),
    securityEvents: createSecurityEvents({
      audit: createAuditLog({ db: owner.database.db, signer: testAuditSigner }),
      logger: testLogger,
      config: { windowMs: 60_000, maxKeys: 1000 },
    }),
    signer: signerFromKey(generateKeyPairSync('ed25519').privateKey),
    publisher: { publish: () => Promise.resolve() },
    config: {
      maxImageBytes: 1024 * 1024,
      requireApproval: true,
      manifestTtlHours: 1,
      downloadBaseUrl: 'https://localhost:8884',
    },
    logger: testLogger,
  });
  return createApiHarness(
    {
      routes: gatewayRoutes({
        pki,
        ca,
        ingest,
        pkiConfig,
        brokerUrl: '',
        crlUrl: '',
        dashboards,
        firmware: { service: firmware, maxImageBytes: 1024 * 1024 },
        mrv: { signer: mrvSignerFromKey(generateKeyPairSync('ed25519').privateKey) },
      }),
    },
    // One database for the API and the features' own services (PKI, ingest, firmware).
    { t: owner },
  );
}
