import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testLogger } from '../test/db.ts';
import { startOutageFixture, type OutageFixture } from '../test/outage-fixture.ts';
import { createAlertService } from './alert-service.ts';

describe('alerts across a database outage', () => {
  let f: OutageFixture;
  beforeAll(async () => {
    f = await startOutageFixture('bd-alert-outage');
  });
  afterAll(async () => {
    await f?.close();
  });

  it('evaluates again once the database is back, even when its rules had to be reloaded during the outage', async () => {
    const alerts = createAlertService({ pool: f.flaky.pool, logger: testLogger, notify: false });
    await alerts.ensureDefaults();
    const reading = (temperature_c: number) => ({
      deviceId: f.deviceId,
      unitId: f.unitId,
      seq: 1,
      ts: new Date(),
      values: { temperature_c },
      expect: 'new' as const,
    });
    alerts.stored([reading(35)]);
    await alerts.settled();

    await f.proxy.cut();
    alerts.invalidateRules(); // an operator changed a rule: the next evaluation reloads them
    alerts.stored([reading(50)]); // fails: the database is gone
    await alerts.settled();
    await f.proxy.restore();

    alerts.stored([reading(50)]);
    await alerts.settled();
    const { rows } = await f.t.database.pool.query<{ rule_id: string; status: string }>(
      `SELECT rule_id, status FROM alerts WHERE device_id = $1`,
      [f.deviceId],
    );
    expect(rows).toEqual([{ rule_id: 'biodigester.temperature_c.high', status: 'open' }]);
  }, 60_000);
});
