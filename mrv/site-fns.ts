import type { Estimate, Quantities } from './mrv-fns.ts';

/**
 * A site report's totals (issue 20): each figure is the sum, in the report's digester order, of
 * the digesters' own figures, so it equals what adding up those digesters' reports issued alone
 * gives, to the bit. Ratios are not summed: the site's methane fraction is its methane over its
 * biogas (0 without biogas). Completeness is per digester only (slots of different digesters are
 * not comparable).
 */

export interface DigesterFigures {
  readings: number;
  quantities: Quantities;
  estimate: Estimate;
  quarantine: { total: number; byReason: Record<string, number> };
}

export function siteTotals(digesters: readonly DigesterFigures[]): DigesterFigures {
  const sum = (f: (d: DigesterFigures) => number) => digesters.reduce((a, d) => a + f(d), 0);
  const q = (k: keyof Omit<Quantities, 'normalisation'>) => sum((d) => d.quantities[k]);
  const n = (k: keyof Quantities['normalisation']) => sum((d) => d.quantities.normalisation[k]);
  const biogasNm3 = q('biogasNm3');
  const methaneNm3 = q('methaneNm3');
  const byReason: Record<string, number> = {};
  for (const d of digesters)
    for (const [code, count] of Object.entries(d.quarantine.byReason))
      byReason[code] = (byReason[code] ?? 0) + count;
  return {
    readings: sum((d) => d.readings),
    quantities: {
      biogasM3: q('biogasM3'),
      biogasNm3,
      methaneFraction: biogasNm3 > 0 ? methaneNm3 / biogasNm3 : 0,
      methaneNm3,
      methaneKg: q('methaneKg'),
      energyMj: q('energyMj'),
      flowSecondsCovered: q('flowSecondsCovered'),
      methaneSecondsCovered: q('methaneSecondsCovered'),
      normalisation: {
        measuredTemperature: n('measuredTemperature'),
        assumedTemperature: n('assumedTemperature'),
        measuredPressure: n('measuredPressure'),
        assumedPressure: n('assumedPressure'),
      },
    },
    estimate: {
      label:
        'Estimate from metered data with the parameters below; not a certified emission reduction. Site total: the sum of the digesters below.',
      displacedFuelKgCo2e: sum((d) => d.estimate.displacedFuelKgCo2e),
      avoidedMethaneKgCo2e: sum((d) => d.estimate.avoidedMethaneKgCo2e),
      totalKgCo2e: sum((d) => d.estimate.totalKgCo2e),
      formulas: {
        displacedFuelKgCo2e: 'Σ digesters[].estimate.displacedFuelKgCo2e',
        avoidedMethaneKgCo2e: 'Σ digesters[].estimate.avoidedMethaneKgCo2e',
        totalKgCo2e: 'Σ digesters[].estimate.totalKgCo2e',
      },
    },
    quarantine: {
      total: sum((d) => d.quarantine.total),
      byReason: Object.fromEntries(Object.entries(byReason).sort(([a], [b]) => (a < b ? -1 : 1))),
    },
  };
}
