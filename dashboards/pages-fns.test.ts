import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { alertValue, groupAlerts, guidanceFor } from './alert-pages.ts';
import { defaultRules } from './alert-rules.ts';
import type { OpenAlert } from './dashboard-repo.ts';
import { createFormatter, localeFrom } from './format-fns.ts';
import { metricLabel } from './html.ts';
import { staleAfterMs, tileState } from './pages.ts';

/**
 * The pure parts of the pages over generated inputs (issue 19): a value's state is never
 * "healthy" once its sensor is offline or it is older than the expected interval; dates carry
 * the year and the configured zone whatever the reader's language; every rule has guidance and
 * a unit on its value; grouping loses no alert.
 */

const rules = defaultRules.map((r) => ({ ...r, enabled: true }));
const metrics = [
  ...new Set(
    defaultRules.map((r) => r.metric).filter((m): m is NonNullable<typeof m> => m !== null),
  ),
];
const NOW = Date.parse('2026-11-30T12:00:00Z');

describe('tileState', () => {
  it('an offline sensor or a value past the expected interval is never coloured or worded healthy', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...metrics, 'weight_kg', 'lid_open'),
        fc.double({ min: -200, max: 5000, noNaN: true }),
        fc.integer({ min: 0, max: 3 * 86_400_000 }),
        fc.boolean(),
        fc.constantFrom('biodigester', 'collection_point'),
        (metric, value, ageMs, offline, kind) => {
          const staleMs = staleAfterMs(rules, kind);
          const s = tileState(
            metric,
            { value, ts: new Date(NOW - ageMs).toISOString(), deviceId: 'd-1' },
            { rules, now: NOW, staleMs, offline: new Set(offline ? ['d-1'] : []) },
          );
          if (offline || ageMs > staleMs) {
            expect(s.cls).toBe('stale');
            expect(s.text).toBe(offline ? 'sensor offline' : 'stale');
          } else {
            expect(s.cls).not.toBe('stale');
            expect(['ok', 'warning', 'critical']).toContain(s.text);
          }
        },
      ),
    );
  });

  it('the expected interval is the kind’s offline rule (15 min by default), and no value reads "no data"', () => {
    expect(staleAfterMs(rules, 'biodigester')).toBe(15 * 60_000);
    expect(
      staleAfterMs(
        [
          {
            unitKind: 'collection_point',
            metric: null,
            condition: 'offline_minutes',
            warn: 60,
            critical: null,
          },
        ],
        'collection_point',
      ),
    ).toBe(60 * 60_000);
    expect(tileState('ph', undefined, { rules, now: NOW, staleMs: 1, offline: new Set() })).toEqual(
      { cls: 'unknown', text: 'no data' },
    );
  });
});

describe('format-fns', () => {
  it('localeFrom never throws and always gives a locale Intl formats with', () => {
    fc.assert(
      fc.property(fc.option(fc.string({ maxLength: 200 }), { nil: undefined }), (header) => {
        const locale = localeFrom(header);
        expect(Intl.DateTimeFormat.supportedLocalesOf([locale])).toEqual([locale]);
      }),
    );
  });

  it('localeFrom follows q-values, then order (RFC 9110 §12.5.4)', () => {
    expect(localeFrom('sw-KE, en;q=0.8')).toBe('sw-KE');
    expect(localeFrom('en;q=0.5, sw;q=0.9')).toBe('sw');
    expect(localeFrom('*;q=1, fr-FR;q=0.1')).toBe('fr-FR');
    expect(localeFrom('xx-!!, ;;;')).toBe('en');
  });

  it('dateTime always shows the year and the configured zone’s wall clock, in any language', () => {
    fc.assert(
      fc.property(
        fc.date({ min: new Date('2000-01-01'), max: new Date('2100-01-01'), noInvalidDate: true }),
        fc.constantFrom('en', 'en-US', 'en-GB', 'sw', 'sw-KE', 'fr'),
        (d, locale) => {
          const f = createFormatter(locale, 'Africa/Nairobi');
          const text = f.dateTime(d);
          const year = new Intl.DateTimeFormat(locale, {
            timeZone: 'Africa/Nairobi',
            year: 'numeric',
          }).format(d);
          expect(text).toContain(year);
          const minute = new Intl.DateTimeFormat('en', {
            timeZone: 'Africa/Nairobi',
            minute: '2-digit',
          })
            .format(d)
            .padStart(2, '0');
          expect(text).toContain(`:${minute}`);
        },
      ),
    );
  });

  it('ago counts whole units back from now, in the reader’s language', () => {
    const f = createFormatter('en-US', 'Africa/Nairobi');
    expect(f.ago(new Date(NOW - 19 * 60_000), NOW)).toBe('19 minutes ago');
    expect(f.ago(new Date(NOW - 30_000), NOW)).toBe('30 seconds ago');
    expect(f.ago(new Date(NOW), NOW)).toBe('now');
    expect(f.ago(new Date(NOW - 3 * 86_400_000), NOW)).toBe('3 days ago');
    expect(createFormatter('sw', 'Africa/Nairobi').ago(new Date(NOW - 2 * 3_600_000), NOW)).toMatch(
      /saa 2/,
    );
    fc.assert(
      fc.property(fc.integer({ min: 60, max: 59 * 60 }), (s) => {
        expect(f.ago(new Date(NOW - s * 1000), NOW)).toBe(
          `${Math.floor(s / 60)} minute${Math.floor(s / 60) === 1 ? '' : 's'} ago`,
        );
      }),
    );
  });
});

describe('alerts', () => {
  it('every default rule has its own guidance and its value a unit', () => {
    for (const r of defaultRules) {
      expect(guidanceFor(r.id), r.id).not.toMatch(/^Check the device and its readings/);
      const value = alertValue({ ruleId: r.id, metric: r.metric, openValue: r.warn });
      const unit = r.metric
        ? metricLabel(r.metric).unit
        : r.condition === 'offline_minutes'
          ? 'min'
          : 'days';
      if (unit) expect(value, r.id).toContain(unit);
    }
  });

  it('grouping keeps every open alert on its own and folds closed repeats, losing none', () => {
    const alert = fc.record({
      id: fc.nat(),
      ruleId: fc.constantFrom('biodigester.ph.low', 'biodigester.device.offline'),
      deviceId: fc.constantFrom('a', 'b'),
      status: fc.constantFrom('open' as const, 'closed' as const),
    });
    fc.assert(
      fc.property(fc.uniqueArray(alert, { selector: (a) => a.id, maxLength: 30 }), (list) => {
        const groups = groupAlerts(list as unknown as OpenAlert[]);
        expect(groups.reduce((n, g) => n + g.times, 0)).toBe(list.length);
        expect(groups.filter((g) => g.alert.status === 'open').length).toBe(
          list.filter((a) => a.status === 'open').length,
        );
        const closedKeys = groups
          .filter((g) => g.alert.status === 'closed')
          .map((g) => `${g.alert.ruleId}:${g.alert.deviceId}`);
        expect(new Set(closedKeys).size).toBe(closedKeys.length);
      }),
    );
  });
});
