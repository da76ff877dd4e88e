import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { metricCatalogue, metricNames } from './metrics.ts';

describe('docs/device-contract.md', () => {
  it('lists exactly the metric catalogue of the code, with its units and ranges', () => {
    const doc = readFileSync('docs/device-contract.md', 'utf8');
    const rows = [
      ...doc.matchAll(/^\| `([a-z0-9_]+)` \| ([a-z_, ]+) \| ([^|]+) \| (-?\d+) … (-?\d+) \|/gm),
    ];
    expect(rows.map((r) => r[1])).toEqual(metricNames);
    for (const [, name, kinds, unit, min, max] of rows) {
      const spec = metricCatalogue[name as keyof typeof metricCatalogue];
      expect({
        name,
        kinds: kinds!.split(', '),
        unit: unit!.trim(),
        min: Number(min),
        max: Number(max),
      }).toEqual({ name, kinds: [...spec.kinds], unit: spec.unit, min: spec.min, max: spec.max });
    }
  });
});
