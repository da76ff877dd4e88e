import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  configSchemas,
  judgeReport,
  mergeConfig,
  parsePartial,
  syncStatus,
  versionAt,
  type ConfigReport,
} from './config-fns.ts';

describe('acknowledgements (generated sequences)', () => {
  type Step = { kind: 'bump' } | { kind: 'report'; report: ConfigReport };
  const step: fc.Arbitrary<Step> = fc.oneof(
    fc.constant<Step>({ kind: 'bump' }),
    fc
      .record({
        version: fc.integer({ min: 1, max: 8 }),
        applied: fc.boolean(),
      })
      .map(({ version, applied }): Step => ({
        kind: 'report',
        report: applied
          ? { version, status: 'applied' }
          : { version, status: 'rejected', reason: 'no' },
      })),
  );

  it('in sync exactly when the last accepted `applied` is the desired version; reported never moves back; a refusal changes nothing', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 40 }), (steps) => {
        const s = {
          desiredVersion: 1,
          reportedVersion: null as number | null,
          rejectedVersion: null as number | null,
        };
        let lastApplied: number | null = null;
        for (const st of steps) {
          if (st.kind === 'bump') {
            s.desiredVersion++;
            continue;
          }
          const before = { ...s };
          const j = judgeReport(s, st.report);
          // Versions only grow: an older one after a newer one is a replay, refused.
          const stale = (before.reportedVersion ?? 0) >= st.report.version;
          if (st.report.version > s.desiredVersion)
            expect(j).toMatchObject({ ok: false, code: 'CONFIG_VERSION_UNKNOWN' });
          else if (
            st.report.status === 'applied' &&
            stale &&
            st.report.version !== before.reportedVersion
          )
            expect(j).toMatchObject({ ok: false, code: 'CONFIG_VERSION_STALE' });
          else if (st.report.status === 'rejected' && stale)
            expect(j).toMatchObject({ ok: false, code: 'CONFIG_VERSION_STALE' });
          else expect(j.ok).toBe(true);
          if (!j.ok) {
            expect(
              st.report.version > s.desiredVersion || (s.reportedVersion ?? 0) >= st.report.version,
            ).toBe(true);
            expect(s).toEqual(before);
            continue;
          }
          if (st.report.status === 'applied') {
            s.reportedVersion = Math.max(s.reportedVersion ?? 0, st.report.version);
            lastApplied = st.report.version;
          } else s.rejectedVersion = st.report.version;
          expect(s.reportedVersion ?? 0).toBeGreaterThanOrEqual(before.reportedVersion ?? 0);
          expect(st.report.version).toBeLessThanOrEqual(s.desiredVersion);
        }
        const status = syncStatus(s);
        if (status === 'in_sync') {
          expect(s.reportedVersion).toBe(s.desiredVersion);
          expect(lastApplied).toBe(s.desiredVersion);
        }
        // A stale ack (below desired) never makes it in sync.
        if (s.reportedVersion !== null && s.reportedVersion < s.desiredVersion)
          expect(status).not.toBe('in_sync');
      }),
      { numRuns: 500 },
    );
  });
});

describe('configuration schema', () => {
  it('merges kind < unit < device, per metric', () => {
    const c = mergeConfig(
      { reportingIntervalS: 60, calibration: { ph: { offset: 0.1, gain: 1 } } },
      { calibration: { temperature_c: { offset: -1, gain: 1 } }, timeSyncServer: 'ntp.unit' },
      { reportingIntervalS: 30, calibration: { ph: { offset: 0.2, gain: 1.1 } } },
    );
    expect(c).toEqual({
      reportingIntervalS: 30,
      timeSyncServer: 'ntp.unit',
      alarms: {},
      calibration: { ph: { offset: 0.2, gain: 1.1 }, temperature_c: { offset: -1, gain: 1 } },
    });
    expect(configSchemas.biodigester.safeParse(c).success).toBe(true);
  });

  it('refuses, with a reason, anything outside the schema of the kind (generated)', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), (v) => {
        const r = parsePartial('collection_point', v);
        if (!r.ok) expect(r.problems.length).toBeGreaterThan(0);
        else
          expect(configSchemas.collection_point.safeParse(mergeConfig(r.value)).success).toBe(true);
      }),
      { numRuns: 300 },
    );
    expect(
      parsePartial('collection_point', { calibration: { ph: { offset: 0, gain: 1 } } }).ok,
    ).toBe(false);
    expect(parsePartial('biodigester', { alarms: { ph: { min: 9, max: 3 } } }).ok).toBe(false);
    expect(parsePartial('biodigester', { reportingIntervalS: 4 }).ok).toBe(false);
    expect(parsePartial('biodigester', { timeSyncServer: 'not a host' }).ok).toBe(false);
    expect(parsePartial('biodigester', { colour: 'red' }).ok).toBe(false);
  });

  it('versionAt: the last span starting at or before the instant', () => {
    const spans = [
      { version: 1, calibration: {}, from: new Date(1000), until: new Date(2000) },
      { version: 2, calibration: {}, from: new Date(2000), until: null },
    ];
    expect(versionAt(spans, new Date(999))).toBeUndefined();
    expect(versionAt(spans, new Date(1000))).toBe(1);
    expect(versionAt(spans, new Date(1999))).toBe(1);
    expect(versionAt(spans, new Date(2000))).toBe(2);
  });
});
