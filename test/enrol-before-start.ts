import path from 'node:path';
import { createAuditLog } from '../audit/index.ts';
import { createDeviceService } from '../devices/device-service.ts';
import { createPki, loadOrCreateCa } from '../provisioning/index.ts';
import { testAuditSigner } from './audit-key.ts';
import type { TestDatabase } from './db.ts';
import { testLogger } from './db.ts';
import { deviceKeyAndCsr } from './device-keys.ts';

/**
 * Registers a device under a new site and unit and issues its certificate through the CA
 * directory (`dataDir/pki`) and database a child gateway started afterwards will use: for tests
 * that start `thamani start` in a child process with one device already enrolled.
 */
export async function enrolBeforeGateway(o: {
  t: TestDatabase;
  dataDir: string;
  passphrase: string;
  deviceId: string;
  site: string;
  unit: string;
}): Promise<{ key: string; cert: string; rootCertPem: string }> {
  const ca = await loadOrCreateCa({
    dir: path.join(o.dataDir, 'pki'),
    passphrase: o.passphrase,
    serverNames: ['localhost', '127.0.0.1', '::1'],
    serverCertDays: 30,
    logger: testLogger,
  });
  const audit = createAuditLog({ db: o.t.database.db, signer: testAuditSigner });
  const devices = createDeviceService({ db: o.t.database.db, audit });
  const pki = createPki({
    db: o.t.database.db,
    ca,
    audit,
    config: {
      passphrase: o.passphrase,
      dir: o.dataDir,
      deviceCertDays: 30,
      serverCertDays: 30,
      enrolmentTokenHours: 1,
      renewalWindowDays: 1,
      rotationOverlapHours: 1,
    },
    brokerUrl: '',
  });
  const actor = { actorId: 'test', actorRole: 'admin' };
  const site = await devices.addSite({ name: o.site }, actor);
  const unit = await devices.addUnit({ site: site.id, kind: 'biodigester', name: o.unit }, actor);
  await devices.addDevice({ id: o.deviceId, unit: unit.id }, actor);
  const keys = deviceKeyAndCsr(o.deviceId);
  return {
    key: keys.key,
    cert: (await pki.issueFromCsr(o.deviceId, keys.csr, actor)).certificate,
    rootCertPem: ca.rootCertPem,
  };
}
