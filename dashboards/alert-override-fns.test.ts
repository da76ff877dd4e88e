import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { indexOverrides, rulesForUnit, thresholdProblem } from './alert-override-fns.ts';
import { transition, type Severity } from './alert-rules.ts';
import {
  badWhenHigh,
  conditions,
  modelAlert,
  validThresholds,
  type ModelCondition,
} from '../test/alert-model.ts';

/**
 * The validator and the effective rule against models written from what the thresholds mean,
 * not from the code: a rule is acceptable when no value both opens and clears its alert and no
 * value is critical without being a warning; a unit is judged by its own override, every other
 * unit of the kind by the kind's rule.
 */

const value = fc.double({ min: -1000, max: 1000, noNaN: true, noDefaultInfinity: true });
const thresholds = fc.record({
  warn: value,
  critical: fc.option(value, { nil: null }),
  clear: value,
});

/** Semantic model of acceptable thresholds, probed at every threshold and just beside it. */
function acceptable(
  condition: ModelCondition,
  t: { warn: number; critical: number | null; clear: number },
): boolean {
  const high = badWhenHigh[condition];
  const past = (v: number, x: number) => (high ? v > x : v < x);
  const cleared = (v: number) => (high ? v <= t.clear : v >= t.clear);
  const points = [t.warn, t.clear, ...(t.critical == null ? [] : [t.critical])];
  const probes = points.flatMap((p) => [
    p,
    p - 1e-9 * Math.max(1, Math.abs(p)),
    p + 1e-9 * Math.max(1, Math.abs(p)),
  ]);
  for (const a of points) for (const b of points) probes.push((a + b) / 2);
  for (const v of probes) {
    // A value that opens the alert must not also close it (the band would flap).
    if (past(v, t.warn) && cleared(v)) return false;
    // A critical value must be a warning one too.
    if (t.critical != null && past(v, t.critical) && !past(v, t.warn)) return false;
  }
  return true;
}

const validFor = (c: ModelCondition) => validThresholds(c, value);
const model = modelAlert;

/** What the code does for one unit: its effective rule through the hysteresis state machine. */
function run(
  rule: { id: string; unitKind: string; metric: string | null; condition: string; title: string },
  kind: { warn: number; critical: number | null; clear: number; enabled: boolean },
  override: { warn: number; critical: number | null; clear: number; enabled: boolean },
  overriddenUnit: string,
  unit: string,
  values: number[],
) {
  const index = indexOverrides([{ unitId: overriddenUnit, ruleId: rule.id, ...override }]);
  const [effective] = rulesForUnit([{ ...rule, ...kind }], index, unit, rule.unitKind);
  let open: { severity: Severity } | undefined;
  let opened = 0;
  for (const v of values) {
    if (!effective!.enabled) continue;
    const t = transition(effective!, open, v);
    if (t.kind === 'open') {
      open = { severity: t.severity };
      opened++;
    } else if (t.kind === 'escalate') open = { severity: t.severity };
    else if (t.kind === 'close') open = undefined;
  }
  return { opened, state: open?.severity ?? null, overridden: effective!.overridden };
}

describe('threshold validation (kind rules and unit overrides alike)', () => {
  it('accepts exactly the thresholds whose hysteresis cannot flap and whose critical is beyond warn', () => {
    fc.assert(
      fc.property(fc.constantFrom(...conditions), thresholds, (condition, t) => {
        expect(thresholdProblem(condition, t) === null).toBe(acceptable(condition, t));
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses non-finite numbers with their own code', () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY])
      expect(thresholdProblem('above', { warn: bad, critical: null, clear: 0 })?.code).toBe(
        'notFinite',
      );
  });

  it('accepts every rule built the healthy way round', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...conditions).chain((c) => fc.tuple(fc.constant(c), validFor(c))),
        ([c, t]) => {
          expect(thresholdProblem(c, t)).toBeNull();
        },
      ),
    );
  });
});

describe('effective rule of a unit', () => {
  it('evaluates the overridden unit by its override and every other unit by the kind rule', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...conditions).chain((c) =>
          fc.record({
            condition: fc.constant(c),
            kind: validFor(c),
            override: validFor(c),
            values: fc.array(value, { maxLength: 30 }),
          }),
        ),
        ({ condition, kind, override, values }) => {
          const rule = {
            id: 'biodigester.x',
            unitKind: 'biodigester',
            metric: condition === 'above' || condition === 'below' ? 'ph' : null,
            condition,
            title: 'x',
          };
          const own = run(rule, kind, override, 'unit-a', 'unit-a', values);
          expect(own).toEqual({ ...model(condition, override, values), overridden: true });
          const other = run(rule, kind, override, 'unit-a', 'unit-b', values);
          expect(other).toEqual({ ...model(condition, kind, values), overridden: false });
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('leaves rules of another kind out and rules without an override as they are', () => {
    const rules = [
      {
        id: 'b.r',
        unitKind: 'biodigester',
        metric: 'ph',
        condition: 'below',
        warn: 6.8,
        critical: 6.5,
        clear: 6.9,
        enabled: false,
      },
      {
        id: 'c.r',
        unitKind: 'collection_point',
        metric: 'fill_level_pct',
        condition: 'above',
        warn: 80,
        critical: 95,
        clear: 60,
      },
    ];
    const index = indexOverrides([
      { unitId: 'u', ruleId: 'c.r', warn: 50, critical: null, clear: 40, enabled: true },
    ]);
    expect(rulesForUnit(rules, index, 'u', 'biodigester')).toEqual([
      { ...rules[0], enabled: false, overridden: false },
    ]);
    expect(rulesForUnit(rules, index, 'u', 'collection_point')).toEqual([
      { ...rules[1], warn: 50, critical: null, clear: 40, enabled: true, overridden: true },
    ]);
  });
});
