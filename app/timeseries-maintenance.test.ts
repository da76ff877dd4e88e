import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { timeseriesInfo } from '../db/timeseries.ts';
import { startOutageFixture, waitFor, type OutageFixture } from '../test/outage-fixture.ts';
import { startTimeseriesMaintenance } from './database.ts';
import { createLifecycle } from './lifecycle.ts';

describe('time-series maintenance across a database outage', () => {
  let f: OutageFixture;
  beforeAll(async () => {
    f = await startOutageFixture('bd-ts-outage');
  });
  afterAll(async () => {
    await f?.close();
  });

  it('retries a failed pass soon, not an hour later', async () => {
    const msgs: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString().split('\n'))
          if (l.trim()) msgs.push((JSON.parse(l) as { msg: string }).msg);
        cb();
      },
    });
    const logger = pino({ level: 'info' }, sink);
    const lifecycle = createLifecycle(logger);
    const mode = (await timeseriesInfo(f.t.database.pool)).mode;
    await f.proxy.cut();
    startTimeseriesMaintenance(
      {
        database: f.flaky,
        url: f.t.url,
        embedded: false,
        timeseries: { mode } as Awaited<ReturnType<typeof timeseriesInfo>>,
      },
      { rawRetentionDays: 365, logger, lifecycle, retryMs: 100 },
    );
    await waitFor('a failed pass', () =>
      msgs.includes('time-series maintenance failed; will retry'),
    );
    await f.proxy.restore();
    await waitFor('a pass after the database came back', () =>
      msgs.includes('time-series maintenance done after failures'),
    );
    await lifecycle.stop('test');
    expect(
      msgs.filter((m) => m === 'time-series maintenance failed; will retry').length,
    ).toBeGreaterThanOrEqual(1);
  }, 90_000);
});
