import { describe, expect, it } from 'vitest';
import { metricCatalogue } from '../devices/metrics.ts';
import { defaultRules, healthOf, lowIsBad, transition } from './alert-rules.ts';

describe('default alert rules', () => {
  it('each has its clear threshold on the healthy side of warn and critical beyond it', () => {
    for (const r of defaultRules) {
      const low = lowIsBad(r.condition);
      expect(low ? r.clear >= r.warn : r.clear <= r.warn, `${r.id} clear`).toBe(true);
      if (r.critical != null)
        expect(low ? r.critical <= r.warn : r.critical >= r.warn, `${r.id} critical`).toBe(true);
      if (r.metric) {
        expect(metricCatalogue[r.metric].kinds as readonly string[], r.id).toContain(r.unitKind);
        // A threshold outside the physical range could never fire.
        expect(r.warn, r.id).toBeGreaterThanOrEqual(metricCatalogue[r.metric].min);
        expect(r.warn, r.id).toBeLessThanOrEqual(metricCatalogue[r.metric].max);
      }
    }
    expect(new Set(defaultRules.map((r) => r.id)).size).toBe(defaultRules.length);
  });

  it('colours a value by the worst rule it breaks', () => {
    const rules = defaultRules.filter((r) => r.unitKind === 'biodigester');
    expect(healthOf(rules, 'temperature_c', 35)).toBe('healthy');
    expect(healthOf(rules, 'temperature_c', 29)).toBe('warning');
    expect(healthOf(rules, 'temperature_c', 46)).toBe('critical');
    expect(healthOf(rules, 'temperature_c', null)).toBe('unknown');
    expect(healthOf(rules, 'weight_kg', 10)).toBe('healthy');
  });

  it('stays quiet between warn and clear in either state', () => {
    const rule = { condition: 'above', warn: 8, critical: 10, clear: 7.5 };
    expect(transition(rule, undefined, 7.8)).toEqual({ kind: 'none' });
    expect(transition(rule, { severity: 'warning' }, 7.8)).toEqual({ kind: 'none' });
    expect(transition(rule, { severity: 'warning' }, 7.5)).toEqual({ kind: 'close' });
    expect(transition(rule, { severity: 'critical' }, 9)).toEqual({ kind: 'none' });
    expect(transition(rule, undefined, 10.5)).toEqual({ kind: 'open', severity: 'critical' });
  });
});
