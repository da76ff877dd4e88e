import type { RawReading } from './mrv-encoding.ts';
import { microsToIso } from './mrv-encoding.ts';
import type { MrvParams } from './mrv-params.ts';

/**
 * The quantities of a report, computed in one pass over a unit's raw readings in leaf order
 * (device, time), in constant memory but for one bit per interval and metric. docs/mrv.md has
 * the formulas. Conservative by construction:
 * - a reading stands for at most one interval after it (less when the next reading of the same
 *   metric comes sooner); a gap therefore counts as zero and is never interpolated;
 * - a reading without temperature or pressure is normalised with the stated assumption, never
 *   with a neighbour's value;
 * - a value out of calibration is excluded (it contributes nothing) and listed.
 */

export const FLOW = 'gas_flow_lpm';
export const METHANE = 'methane_pct';
export const TEMPERATURE = 'temperature_c';
export const PRESSURE = 'biogas_pressure_kpa';
/** The metrics a report's quantities rest on; completeness is reported for each. */
export const MRV_METRICS = [FLOW, METHANE, TEMPERATURE, PRESSURE] as const;
export type MrvMetric = (typeof MRV_METRICS)[number];

export interface CalibrationWindow {
  deviceId: string;
  metric: string;
  validFromMicros: bigint;
  /** Exclusive; null: until further notice. */
  validToMicros: bigint | null;
  result: 'pass' | 'fail';
}

export interface Period {
  startMicros: bigint;
  /** Exclusive. */
  endMicros: bigint;
}

export interface Gap {
  start: string;
  /** Exclusive. */
  end: string;
  intervals: number;
}

export interface ExcludedRange {
  deviceId: string;
  metric: string;
  reason: 'calibration_failed' | 'not_calibrated';
  first: string;
  last: string;
  count: number;
}

export interface MetricCompleteness {
  received: number;
  missing: number;
  /** received / expected, 0–1. */
  ratio: number;
  gaps: Gap[];
}

export interface Quantities {
  /** At measured (or assumed) gas conditions. */
  biogasM3: number;
  biogasNm3: number;
  /** Time-weighted over the methane readings, 0–1; 0 when there is none. */
  methaneFraction: number;
  methaneNm3: number;
  methaneKg: number;
  energyMj: number;
  flowSecondsCovered: number;
  methaneSecondsCovered: number;
  normalisation: {
    measuredTemperature: number;
    assumedTemperature: number;
    measuredPressure: number;
    assumedPressure: number;
  };
}

export interface Estimate {
  label: string;
  displacedFuelKgCo2e: number;
  avoidedMethaneKgCo2e: number;
  totalKgCo2e: number;
  formulas: Record<string, string>;
}

export interface Pending {
  tsMicros: bigint;
  value: number;
  /** Flow only: Nm³ per actual m³ for this reading. */
  factor: number;
}

const US = 1_000_000;

export function createMrvAccumulator(
  period: Period,
  params: MrvParams,
  calibrations: readonly CalibrationWindow[],
) {
  const intervalUs = BigInt(params.intervalSeconds.value) * 1_000_000n;
  const intervalUsN = params.intervalSeconds.value * 1_000_000;
  const span = period.endMicros - period.startMicros;
  if (span <= 0n) throw new RangeError('the period is empty');
  const slots = Number((span + intervalUs - 1n) / intervalUs);
  const received = Object.fromEntries(MRV_METRICS.map((m) => [m, new Uint8Array(slots)])) as Record<
    MrvMetric,
    Uint8Array
  >;
  const windows = new Map<string, CalibrationWindow[]>();
  for (const w of calibrations) {
    const key = `${w.deviceId}\u0000${w.metric}`;
    windows.set(key, [...(windows.get(key) ?? []), w]);
  }

  const q = {
    biogasM3: 0,
    biogasNm3: 0,
    flowUs: 0,
    methaneWeighted: 0,
    methaneUs: 0,
    measuredT: 0,
    assumedT: 0,
    measuredP: 0,
    assumedP: 0,
  };
  const excluded: ExcludedRange[] = [];
  let device: string | undefined;
  let pending: { flow?: Pending; methane?: Pending } = {};
  // A run of excluded readings per metric; its `last` is written when the run closes (one ISO
  // formatting per run, not per reading).
  let openExcluded = new Map<string, { range: ExcludedRange; lastMicros: bigint }>();
  const closeRun = (run: { range: ExcludedRange; lastMicros: bigint }) => {
    run.range.last = microsToIso(run.lastMicros);
    excluded.push(run.range);
  };
  let readings = 0;

  const requireCalibration = params.requireCalibration.value;
  const calibratedDevices = new Set(calibrations.map((w) => w.deviceId));
  function calibrationProblem(
    deviceId: string,
    metric: string,
    ts: bigint,
  ): ExcludedRange['reason'] | undefined {
    // The common case, no calibration record for the device and none required, costs nothing.
    if (!requireCalibration && !calibratedDevices.has(deviceId)) return undefined;
    const ws = windows.get(`${deviceId}\u0000${metric}`) ?? [];
    const covering = ws.filter(
      (w) => w.validFromMicros <= ts && (w.validToMicros === null || ts < w.validToMicros),
    );
    if (covering.some((w) => w.result === 'fail')) return 'calibration_failed';
    if (
      params.requireCalibration.value &&
      (metric === FLOW || metric === METHANE) &&
      !covering.some((w) => w.result === 'pass')
    )
      return 'not_calibrated';
    return undefined;
  }

  /** Seconds a reading stands for: up to the next reading of its metric, at most one interval. */
  function heldUs(p: Pending, nextTs: bigint): number {
    const until = nextTs < period.endMicros ? nextTs : period.endMicros;
    const d = until - p.tsMicros;
    return Number(d < intervalUs ? d : intervalUs);
  }

  function settle(nextTs: bigint, which: 'flow' | 'methane'): void {
    const p = pending[which];
    if (!p) return;
    const us = heldUs(p, nextTs);
    if (which === 'flow') {
      const m3 = (p.value * (us / US / 60)) / 1000;
      q.biogasM3 += m3;
      q.biogasNm3 += m3 * p.factor;
      q.flowUs += us;
    } else {
      q.methaneWeighted += (p.value / 100) * us;
      q.methaneUs += us;
    }
    pending[which] = undefined;
  }

  function closeDevice(): void {
    settle(period.endMicros, 'flow');
    settle(period.endMicros, 'methane');
    for (const run of openExcluded.values()) closeRun(run);
    openExcluded = new Map();
    pending = {};
  }

  /** `problems`: the reading's metrics excluded for calibration (none: undefined). */
  function normalisationFactor(r: RawReading, problems: Map<string, unknown> | undefined): number {
    const t =
      params.useReportedTemperature.value &&
      r.values[TEMPERATURE] !== undefined &&
      !problems?.has(TEMPERATURE)
        ? r.values[TEMPERATURE]
        : undefined;
    const p =
      r.values[PRESSURE] !== undefined && !problems?.has(PRESSURE) ? r.values[PRESSURE] : undefined;
    if (t === undefined) q.assumedT += 1;
    else q.measuredT += 1;
    if (p === undefined) q.assumedP += 1;
    else q.measuredP += 1;
    const tK = (t ?? params.assumedGasTemperatureC.value) + 273.15;
    const pAbs = params.ambientPressureKpa.value + (p ?? params.assumedGaugePressureKpa.value);
    return (pAbs / params.normalPressureKpa.value) * (params.normalTemperatureK.value / tK);
  }

  return {
    /** One reading, in leaf order, inside the period. */
    add(r: RawReading): void {
      if (r.tsMicros < period.startMicros || r.tsMicros >= period.endMicros)
        throw new RangeError(
          `reading ${r.deviceId} ${microsToIso(r.tsMicros)} is outside the period`,
        );
      if (r.deviceId !== device) {
        closeDevice();
        device = r.deviceId;
      }
      readings += 1;
      const slot = Math.floor(Number(r.tsMicros - period.startMicros) / intervalUsN);
      let problems: Map<string, ExcludedRange['reason']> | undefined;
      for (const m of MRV_METRICS) {
        if (r.values[m] === undefined) continue;
        const problem = calibrationProblem(r.deviceId, m, r.tsMicros);
        const open = openExcluded.get(m);
        if (problem) {
          (problems ??= new Map()).set(m, problem);
          if (open && open.range.reason === problem) {
            open.lastMicros = r.tsMicros;
            open.range.count += 1;
          } else {
            if (open) closeRun(open);
            openExcluded.set(m, {
              range: {
                deviceId: r.deviceId,
                metric: m,
                reason: problem,
                first: microsToIso(r.tsMicros),
                last: '',
                count: 1,
              },
              lastMicros: r.tsMicros,
            });
          }
        } else {
          if (open) closeRun(open);
          openExcluded.delete(m);
          received[m][slot] = 1;
        }
      }
      // No closure per reading: this runs for every leaf of a month (BENCHMARKS.md, MRV).
      if (r.values[FLOW] !== undefined) {
        settle(r.tsMicros, 'flow');
        if (!problems?.has(FLOW))
          pending.flow = {
            tsMicros: r.tsMicros,
            value: r.values[FLOW],
            factor: normalisationFactor(r, problems),
          };
      }
      if (r.values[METHANE] !== undefined) {
        settle(r.tsMicros, 'methane');
        if (!problems?.has(METHANE))
          pending.methane = { tsMicros: r.tsMicros, value: r.values[METHANE], factor: 1 };
      }
    },

    finish() {
      closeDevice();
      const intervalSeconds = params.intervalSeconds.value;
      const completeness = Object.fromEntries(
        MRV_METRICS.map((m) => [
          m,
          completenessOf(received[m], period.startMicros, intervalUs, period.endMicros),
        ]),
      ) as Record<MrvMetric, MetricCompleteness>;
      const methaneFraction = q.methaneUs > 0 ? q.methaneWeighted / q.methaneUs : 0;
      const methaneNm3 = q.biogasNm3 * methaneFraction;
      const methaneKg = methaneNm3 * params.methaneDensityKgPerNm3.value;
      const energyMj = methaneKg * params.methaneLhvMjPerKg.value;
      const quantities: Quantities = {
        biogasM3: q.biogasM3,
        biogasNm3: q.biogasNm3,
        methaneFraction,
        methaneNm3,
        methaneKg,
        energyMj,
        flowSecondsCovered: q.flowUs / US,
        methaneSecondsCovered: q.methaneUs / US,
        normalisation: {
          measuredTemperature: q.measuredT,
          assumedTemperature: q.assumedT,
          measuredPressure: q.measuredP,
          assumedPressure: q.assumedP,
        },
      };
      return {
        readings,
        quantities,
        estimate: estimateOf(quantities, params),
        completeness: { intervalSeconds, expectedIntervals: slots, metrics: completeness },
        excluded,
      };
    },
  };
}

export type MrvAccumulator = ReturnType<typeof createMrvAccumulator>;

function completenessOf(
  bits: Uint8Array,
  start: bigint,
  intervalUs: bigint,
  end: bigint,
): MetricCompleteness {
  const gaps: Gap[] = [];
  let receivedCount = 0;
  let gapStart = -1;
  const at = (i: number) => {
    const t = start + BigInt(i) * intervalUs;
    return microsToIso(t < end ? t : end);
  };
  for (let i = 0; i <= bits.length; i += 1) {
    const got = i < bits.length && bits[i] === 1;
    if (got) receivedCount += 1;
    if (!got && i < bits.length && gapStart < 0) gapStart = i;
    if ((got || i === bits.length) && gapStart >= 0) {
      gaps.push({ start: at(gapStart), end: at(i), intervals: i - gapStart });
      gapStart = -1;
    }
  }
  return {
    received: receivedCount,
    missing: bits.length - receivedCount,
    ratio: bits.length === 0 ? 0 : receivedCount / bits.length,
    gaps,
  };
}

export function estimateOf(
  qt: Pick<Quantities, 'energyMj' | 'methaneKg'>,
  params: MrvParams,
): Estimate {
  const displaced = qt.energyMj * params.baselineEmissionFactorKgCo2ePerMj.value;
  const avoided = qt.methaneKg * params.gwpCh4.value * params.methaneVentedFractionBaseline.value;
  return {
    label:
      'Estimate from metered data with the parameters below; not a certified emission reduction.',
    displacedFuelKgCo2e: displaced,
    avoidedMethaneKgCo2e: avoided,
    totalKgCo2e: displaced + avoided,
    formulas: {
      displacedFuelKgCo2e: 'energyMj × baselineEmissionFactorKgCo2ePerMj',
      avoidedMethaneKgCo2e: 'methaneKg × gwpCh4 × methaneVentedFractionBaseline',
      totalKgCo2e: 'displacedFuelKgCo2e + avoidedMethaneKgCo2e',
    },
  };
}
