import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { guidanceFor } from '../dashboards/alert-pages.ts';
import { translator } from '../i18n/index.ts';
import {
  inQuiet,
  localMinute,
  normaliseEmail,
  normalisePhone,
  quietHoursEnd,
  renderAlert,
  sendAfter,
  type AlertFacts,
} from './notification-fns.ts';

const digits = (n: number) =>
  fc.array(fc.integer({ min: 0, max: 9 }), { minLength: n, maxLength: n }).map((d) => d.join(''));

describe('phone numbers', () => {
  it('normalises every way people write a Kenyan mobile number to E.164', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('7', '1'),
        digits(8),
        fc.constantFrom('+254', '254', '0'),
        fc.constantFrom('', ' ', '-'),
        (first, rest, prefix, sep) => {
          const nsn = `${first}${rest}`;
          const written = `${prefix}${nsn.slice(0, 3)}${sep}${nsn.slice(3, 6)}${sep}${nsn.slice(6)}`;
          expect(normalisePhone(written)).toBe(`+254${nsn}`);
        },
      ),
    );
  });

  it('never accepts anything that is not a Kenyan mobile number in E.164', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.stringMatching(/^\+?[0-9 -]{6,16}$/)), (s) => {
        const r = normalisePhone(s);
        if (r !== undefined) expect(r).toMatch(/^\+254[17]\d{8}$/);
      }),
    );
    for (const bad of [
      '+2547123',
      '+255712345678',
      '+254812345678',
      '0712345678x',
      '+1 555 0100',
      '',
    ])
      expect(normalisePhone(bad)).toBeUndefined();
  });

  it('accepts emails of the usual shape and refuses the rest', () => {
    expect(normaliseEmail(' mary@school.example ')).toBe('mary@school.example');
    for (const bad of [
      'mary',
      'mary@',
      '@school.example',
      'a b@c.example',
      `${'x'.repeat(250)}@c.example`,
    ])
      expect(normaliseEmail(bad)).toBeUndefined();
  });
});

describe('quiet hours', () => {
  const zones = ['Africa/Nairobi', 'UTC', 'Europe/London', 'America/Sao_Paulo'];
  const at = fc.date({
    min: new Date('2024-01-01T00:00:00Z'),
    max: new Date('2030-01-01T00:00:00Z'),
    noInvalidDate: true,
  });
  const minute = fc.integer({ min: 0, max: 1439 });

  it('sends at the first minute outside quiet hours, never inside, never before due', () => {
    fc.assert(
      fc.property(at, minute, minute, fc.constantFrom(...zones), (due, startMin, endMin, zone) => {
        const q = { startMin, endMin };
        const out = quietHoursEnd(due, q, zone);
        expect(out.getTime()).toBeGreaterThanOrEqual(due.getTime());
        expect(inQuiet(localMinute(out, zone), q)).toBe(false);
        if (!inQuiet(localMinute(due, zone), q)) expect(out).toEqual(due);
        else {
          // The earliest such minute: the one before it is still quiet (or is the due time's own).
          expect(out.getTime() - due.getTime()).toBeLessThanOrEqual(25 * 3_600_000);
          const before = new Date(out.getTime() - 60_000);
          if (before.getTime() > due.getTime())
            expect(inQuiet(localMinute(before, zone), q)).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('lets critical alerts through quiet hours only when the user says so', () => {
    const due = new Date('2026-11-30T20:30:00Z'); // 23:30 in Nairobi
    const quiet = { startMin: 22 * 60, endMin: 6 * 60 };
    const morning = new Date('2026-12-01T03:00:00Z'); // 06:00 in Nairobi
    expect(
      sendAfter(due, { quiet, criticalOverridesQuiet: true }, 'critical', 'Africa/Nairobi'),
    ).toEqual(due);
    expect(
      sendAfter(due, { quiet, criticalOverridesQuiet: false }, 'critical', 'Africa/Nairobi'),
    ).toEqual(morning);
    expect(
      sendAfter(due, { quiet, criticalOverridesQuiet: true }, 'warning', 'Africa/Nairobi'),
    ).toEqual(morning);
  });
});

describe('alert messages', () => {
  const text = (max: number, min = 0) =>
    fc.string({ minLength: min, maxLength: max }).filter((v) => !v.includes('{'));
  const facts = fc.record({
    alertId: fc.integer({ min: 1 }),
    ruleId: fc.constantFrom(
      'biodigester.ph.low',
      'biodigester.temperature_c.high',
      'collection_point.fill_level_pct.high',
      'biodigester.device.offline',
    ),
    title: text(40, 1),
    severity: fc.constantFrom('warning' as const, 'critical' as const),
    event: fc.constantFrom('opened' as const, 'escalated' as const, 'closed' as const),
    deviceId: fc.stringMatching(/^[a-z0-9-]{3,20}$/),
    unitId: fc.uuid(),
    unitKind: fc.constantFrom('biodigester', 'collection_point'),
    unitName: text(30, 1),
    siteName: text(30, 1),
    value: text(20),
  });

  it('says what to do and where to look, in the reader language, with every placeholder filled', () => {
    fc.assert(
      fc.property(
        facts,
        fc.constantFrom('en' as const, 'sw' as const),
        fc.constantFrom('email' as const, 'sms' as const),
        fc.constantFrom('kitchen_manager' as const, 'technician' as const),
        (a: AlertFacts, lang, channel, role) => {
          const { subject, body } = renderAlert(a, {
            lang,
            role,
            channel,
            baseUrl: 'https://t.example',
          });
          // What to do, in the reader's language.
          if (a.event !== 'closed') expect(body).toContain(guidanceFor(a.ruleId, translator(lang)));
          expect(body).toContain(
            role === 'technician' ? `https://t.example/fleet/${a.deviceId}` : a.unitId,
          );
          expect(body).toContain(
            lang === 'sw' ? (a.event === 'closed' ? 'Fungua' : 'Cha kufanya') : 'Open:',
          );
          expect(subject).toContain(a.title);
          expect(`${subject}${body}`).not.toMatch(
            /\{(severity|title|unit|site|device|value|guidance|url)\}/,
          );
        },
      ),
    );
  });
});
