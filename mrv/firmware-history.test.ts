import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createAuditLog } from '../audit/index.ts';
import { createTestDatabase } from '../test/db.ts';
import { testAuditSigner } from '../test/audit-key.ts';
import { createMrvRepo, createMrvService, monthPeriod, mrvSignerFromKey } from './index.ts';
import { parseReportDocument } from './mrv-report-fns.ts';

/**
 * Provenance names the firmware each device ran over the period, with the times (issue 20): the
 * database records every change of devices.firmware_version (migration 0033), whoever makes it.
 */
const t = await createTestDatabase();
const owner = t.database.pool;
const actor = {
  actorId: 'cli:test',
  actorRole: 'admin',
  ip: null,
  userAgent: null,
  requestId: null,
};

describe('firmware history in provenance', () => {
  it('records each change of a device firmware, once, append-only; the report lists what ran when, clipped to the period', async () => {
    const site = await owner.query<{ id: string }>(
      "INSERT INTO sites (name) VALUES ('fw school') RETURNING id",
    );
    const unit = await owner.query<{ id: string }>(
      "INSERT INTO units (site_id, kind, name) VALUES ($1, 'biodigester', 'fw digester') RETURNING id",
      [site.rows[0]!.id],
    );
    const unitId = unit.rows[0]!.id;
    await owner.query(
      "INSERT INTO devices (id, unit_id, kind, status, firmware_version) VALUES ('fw-1', $1, 'biodigester', 'active', '1.2.0')",
      [unitId],
    );
    // The same version again is no change; a new one is.
    await owner.query("UPDATE devices SET firmware_version = '1.2.0' WHERE id = 'fw-1'");
    await owner.query("UPDATE devices SET status = 'active' WHERE id = 'fw-1'");
    await owner.query("UPDATE devices SET firmware_version = '1.3.0' WHERE id = 'fw-1'");
    const recorded = await owner.query<{ version: string; recent: boolean }>(
      "SELECT version, since > now() - interval '1 hour' AS recent FROM device_firmware_history WHERE device_id = 'fw-1' ORDER BY id",
    );
    expect(recorded.rows).toEqual([
      { version: '1.2.0', recent: true },
      { version: '1.3.0', recent: true },
    ]);
    await expect(
      owner.query("UPDATE device_firmware_history SET version = 'x' WHERE device_id = 'fw-1'"),
    ).rejects.toMatchObject({ code: '42501' });

    // October's history, as the trigger would have written it then.
    await owner.query(
      `INSERT INTO device_firmware_history (device_id, version, since) VALUES
         ('fw-1', '0.9.0', '2026-09-15T00:00:00Z'), ('fw-1', '1.0.0', '2026-10-10T12:00:00Z'), ('fw-1', '1.1.0', '2026-10-20T08:00:00Z')`,
    );
    const mrv = createMrvService({
      db: t.database.db,
      repo: createMrvRepo(),
      audit: createAuditLog({ db: t.database.db, signer: testAuditSigner }),
      signer: mrvSignerFromKey(generateKeyPairSync('ed25519').privateKey),
    });
    const doc = parseReportDocument(
      (await mrv.issue({ unit: unitId, ...monthPeriod('2026-10'), actor })).document,
    );
    const prov = doc.report.provenance as { firmwareHistory: unknown[] };
    expect(prov.firmwareHistory).toEqual([
      {
        deviceId: 'fw-1',
        version: '0.9.0',
        from: '2026-10-01T00:00:00.000000Z',
        to: '2026-10-10T12:00:00.000000Z',
        source: 'change',
      },
      {
        deviceId: 'fw-1',
        version: '1.0.0',
        from: '2026-10-10T12:00:00.000000Z',
        to: '2026-10-20T08:00:00.000000Z',
        source: 'change',
      },
      {
        deviceId: 'fw-1',
        version: '1.1.0',
        from: '2026-10-20T08:00:00.000000Z',
        to: '2026-11-01T00:00:00.000000Z',
        source: 'change',
      },
    ]);
  });
});
