import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { needsCollectionOrder } from '../field/field-fns.ts';
import { rulesResolver, type RuleOverride } from './alert-override-fns.ts';
import { defaultRules, healthOf } from './alert-rules.ts';
import type { FleetRow, UnitSummary } from './dashboard-repo.ts';
import { fleetTable } from './fleet-pages.ts';
import { createFormatter } from './format-fns.ts';
import { collectionList, digesterList, staleAfterMs } from './pages.ts';

/**
 * Every page that reads thresholds shows a unit by its effective rules: the digester cards'
 * tile colours, the collection list's "needs collection" level, the fleet table's battery
 * colour, the stale age, and the field list's due points. Two units of the same kind, one with
 * an override: the same value is coloured by each unit's own rule.
 */
const rules = defaultRules.map((r) => ({ ...r, enabled: true }));
const f = createFormatter('en', 'Africa/Nairobi');
const NOW = Date.parse('2026-11-30T12:00:00Z');
const at = new Date(NOW - 60_000).toISOString();

const unit = (
  id: string,
  kind: UnitSummary['kind'],
  latest: Record<string, number>,
): UnitSummary => ({
  id,
  name: id,
  kind,
  site: 'S',
  devices: [{ id: `${id}-d`, online: true, lastSeenAt: at }],
  latest: Object.fromEntries(
    Object.entries(latest).map(([m, value]) => [m, { value, ts: at, deviceId: `${id}-d` }]),
  ),
  alerts: [],
});

/** The class of unit `id`'s tile for `metric` in rendered HTML. */
function tileClass(html: string, id: string, metric: string): string | undefined {
  const m = new RegExp(`class="tile ([a-z]+)" data-unit="${id}" data-metric="${metric}"`).exec(
    html,
  );
  return m?.[1];
}

const override = (
  unitId: string,
  ruleId: string,
  t: Pick<RuleOverride, 'warn' | 'critical' | 'clear'>,
): RuleOverride => ({ unitId, ruleId, enabled: true, ...t });

describe('pages by the effective rules of each unit', () => {
  it('digester tiles: the overridden unit by its override, the other unit by the kind rule', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 10, max: 40 }),
        fc.integer({ min: 0, max: 9 }),
        fc.integer({ min: 0, max: 9 }),
        fc.integer({ min: 0, max: 60 }),
        (warn, below, above, value) => {
          const o = override('A', 'biodigester.temperature_c.low', {
            warn,
            critical: warn - below,
            clear: warn + above,
          });
          const rulesOf = rulesResolver(rules, [o]);
          const html = digesterList(
            [
              unit('A', 'biodigester', { temperature_c: value }),
              unit('B', 'biodigester', { temperature_c: value }),
            ],
            rulesOf,
            f,
            NOW,
          );
          const kind = rules.filter((r) => r.unitKind === 'biodigester');
          const own = rulesOf('A', 'biodigester');
          expect(tileClass(html, 'A', 'temperature_c')).toBe(healthOf(own, 'temperature_c', value));
          expect(tileClass(html, 'B', 'temperature_c')).toBe(
            healthOf(kind, 'temperature_c', value),
          );
        },
      ),
    );
  });

  it('collection: a point with its own fill level is due at that level, in the page and the field list', () => {
    const o = override('A', 'collection_point.fill_level_pct.high', {
      warn: 50,
      critical: 70,
      clear: 40,
    });
    const rulesOf = rulesResolver(rules, [o]);
    const html = collectionList(
      [
        unit('A', 'collection_point', { fill_level_pct: 60 }),
        unit('B', 'collection_point', { fill_level_pct: 60 }),
      ],
      80,
      rulesOf,
      f,
      NOW,
    );
    expect(html).toMatch(/class="card warning" id="unit-A"/);
    expect(html).toMatch(/class="card healthy" id="unit-B"/);
    expect(html).toContain('high="50"');
    const order = needsCollectionOrder(
      ['A', 'B'].map((unitId) => ({
        unitId,
        fill: { pct: 60, ts: new Date(at) },
        lastCollectedAt: null,
        forecast: { kind: 'none' } as never,
      })),
      (id) => (id === 'A' ? 50 : 80),
    );
    expect(order.map((d) => [d.unitId, d.due])).toEqual([
      ['A', true],
      ['B', false],
    ]);
  });

  it('fleet: battery coloured by the device’s unit’s own rule; stale age by its own offline rule', () => {
    const rulesOf = rulesResolver(rules, [
      override('A', 'collection_point.battery_v.low', { warn: 3.8, critical: 3.6, clear: 3.9 }),
      override('A', 'collection_point.device.offline', { warn: 60, critical: 120, clear: 60 }),
    ]);
    const row = (unitId: string): FleetRow => ({
      id: `${unitId}-d`,
      kind: 'collection_point',
      status: 'active',
      online: true,
      lastSeenAt: at,
      firmware: null,
      unit: unitId,
      unitId,
      site: 'S',
      battery: 3.7,
      rssi: null,
      certExpires: null,
      certStatus: null,
      quarantined: 0,
      openAlerts: 0,
    });
    const html = fleetTable([row('A'), row('B')], rulesOf, {}, ['S'], f, NOW);
    expect(html).toMatch(/data-device="A-d"[^]*?data-metric="battery_v" class="warning"/);
    expect(html).toMatch(/data-device="B-d"[^]*?data-metric="battery_v" class="healthy"/);
    expect(staleAfterMs(rulesOf('A', 'collection_point'), 'collection_point')).toBe(60 * 60_000);
    expect(staleAfterMs(rulesOf('B', 'collection_point'), 'collection_point')).toBe(15 * 60_000);
  });
});
