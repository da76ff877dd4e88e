import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createFormatter } from '../dashboards/format-fns.ts';
import { field } from '../i18n/messages/field.ts';
import type { Forecast } from './field-fns.ts';
import { duePage, feedingPage, pointPage } from './field-pages.ts';
import type { CollectionView, FeedingView, FieldUnit } from './field-repo.ts';

/** The field pages in both languages, over generated records: translated, and every value escaped. */
const NOW = new Date('2026-11-30T09:00:00Z');
const unit: FieldUnit = {
  id: '7d9f1c2e-0000-4000-8000-000000000001',
  name: 'Shule Digester',
  site: 'Kisumu Girls',
  kind: 'biodigester',
  createdAt: new Date('2026-01-01T00:00:00Z'),
};
const text = fc.string({ maxLength: 40 });

function render(lang: 'en' | 'sw', names: { note: string; who: string; unitName: string }) {
  const f = createFormatter(lang === 'sw' ? 'sw-KE' : 'en-GB', 'Africa/Nairobi');
  const u = { ...unit, name: names.unitName };
  const feeding: FeedingView = {
    id: 1,
    unitId: u.id,
    fedAt: new Date(NOW.getTime() - 3_600_000),
    kg: 12.5,
    note: names.note,
    recordedBy: 'me',
    recordedByName: names.who,
    recordedAt: new Date(NOW.getTime() - 3_600_000),
    correctedAt: NOW,
    voidedAt: null,
  };
  const collection: CollectionView = {
    id: 1,
    unitId: u.id,
    collectedAt: NOW,
    weightKg: 40,
    note: names.note,
    collectedBy: 'me',
    collectedByName: names.who,
    recordedAt: NOW,
  };
  const forecasts: Forecast[] = [
    {
      kind: 'forecast',
      slopePerHour: 2,
      fittedNow: 70,
      fullAt: new Date(NOW.getTime() + 5 * 3_600_000),
      points: 20,
    },
    { kind: 'none', reason: 'not-rising', points: 20 },
  ];
  const points = forecasts.map((forecast, i) => ({
    unitId: `${u.id.slice(0, -1)}${i}`,
    unit: { ...u, kind: 'collection_point' as const },
    fill: { pct: 85 - i * 40, ts: NOW },
    lastCollectedAt: i === 0 ? null : new Date(NOW.getTime() - 86_400_000),
    forecast,
    collectedSinceReading: false,
    due: i === 0,
    stale: i === 1,
    fullBy: forecast.kind === 'forecast' ? forecast.fullAt.getTime() : Infinity,
  }));
  return [
    feedingPage(
      u,
      [feeding, { ...feeding, id: 2, voidedAt: NOW }],
      [{ day: '2026-11-30', kg: 12.5, m3: 3.2 }],
      f,
      {
        actorId: 'me',
        canRecord: true,
        now: NOW,
      },
    ),
    duePage(points, 80, f, { canCollect: true, now: NOW }),
    duePage([], 80, f, { canCollect: true, now: NOW }),
    pointPage(u, [collection], f, {
      canCollect: true,
      now: NOW,
      today: '2026-11-30',
      yearAgo: '2025-11-30',
    }),
    pointPage(u, [], f, { canCollect: true, now: NOW, today: '2026-11-30', yearAgo: '2025-11-30' }),
  ].join('\n');
}

describe('field pages', () => {
  it('in Swahili carry none of the English messages', () => {
    const html = render('sw', { note: 'x', who: 'y', unitName: 'z' });
    const english = render('en', { note: 'x', who: 'y', unitName: 'z' });
    // Each English message's literal text (placeholders cut out) that differs from its Swahili.
    const chunks = Object.entries(field.en).flatMap(([key, en]) =>
      en
        .split(/\{\w+\}/)
        .map((c) => c.trim())
        .filter((c) => c.length >= 8 && !field.sw[key as keyof typeof field.sw].includes(c)),
    );
    expect(chunks.length).toBeGreaterThan(40);
    const leaked = chunks.filter((c) => html.includes(c));
    expect(leaked).toEqual([]);
    // The English pages do use them (the check would catch a leak).
    expect(chunks.filter((c) => english.includes(c)).length).toBeGreaterThan(20);
  });

  it('escape every recorded value: notes, names and unit names never become markup', () => {
    fc.assert(
      fc.property(text, text, text, fc.constantFrom('en', 'sw'), (note, who, unitName, lang) => {
        const evil = (s: string) => `<i id="x">${s}</i>"'&`;
        const html = render(lang, {
          note: evil(note),
          who: evil(who),
          unitName: evil(unitName),
        });
        expect(html).not.toContain('<i id="x">');
        // The chart's JSON block cannot be closed from inside.
        expect(html.match(/<\/script>/g)?.length ?? 0).toBe(html.match(/<script /g)?.length ?? 0);
      }),
      { numRuns: 100 },
    );
  });
});
