/**
 * The metric catalogue: what each kind of device may report, in which unit, within which physical
 * range. It is part of the device contract (docs/device-contract.md) and the source of the
 * `readings` columns (one nullable column per metric, ADR 0001).
 */

export const deviceKinds = ['biodigester', 'collection_point'] as const;
export type DeviceKind = (typeof deviceKinds)[number];

export interface MetricSpec {
  /** Unit as shown to people. */
  readonly unit: string;
  readonly description: string;
  /** Inclusive physical bounds of a plausible value; outside them a reading is quarantined. */
  readonly min: number;
  readonly max: number;
  /** Kinds that may report it. */
  readonly kinds: readonly DeviceKind[];
  /** Reported as true/false, stored as 1/0 (an hourly average is then the share of time). */
  readonly boolean?: true;
}

const both = deviceKinds;

export const metricCatalogue = {
  temperature_c: {
    unit: '°C',
    description: 'Slurry or bin temperature',
    min: -40,
    max: 100,
    kinds: both,
  },
  ph: { unit: 'pH', description: 'Slurry acidity', min: 0, max: 14, kinds: ['biodigester'] },
  biogas_pressure_kpa: {
    unit: 'kPa',
    description: 'Gas holder gauge pressure',
    min: 0,
    max: 100,
    kinds: ['biodigester'],
  },
  methane_pct: {
    unit: '% vol',
    description: 'Methane share of the biogas',
    min: 0,
    max: 100,
    kinds: ['biodigester'],
  },
  gas_flow_lpm: {
    unit: 'L/min',
    description: 'Biogas flow to the kitchen',
    min: 0,
    max: 1000,
    kinds: ['biodigester'],
  },
  slurry_level_pct: {
    unit: '%',
    description: 'Digester fill level',
    min: 0,
    max: 100,
    kinds: ['biodigester'],
  },
  h2s_ppm: {
    unit: 'ppm',
    description: 'Hydrogen sulphide in the biogas',
    min: 0,
    max: 10000,
    kinds: ['biodigester'],
  },
  fill_level_pct: {
    unit: '%',
    description: 'Bin fill level',
    min: 0,
    max: 100,
    kinds: ['collection_point'],
  },
  weight_kg: {
    unit: 'kg',
    description: 'Waste weight on the scale',
    min: 0,
    max: 5000,
    kinds: ['collection_point'],
  },
  lid_open: {
    unit: 'bool',
    description: 'Lid open',
    min: 0,
    max: 1,
    kinds: ['collection_point'],
    boolean: true,
  },
  battery_v: { unit: 'V', description: 'Sensor battery voltage', min: 0, max: 30, kinds: both },
  rssi_dbm: { unit: 'dBm', description: 'Radio signal strength', min: -150, max: 0, kinds: both },
} as const satisfies Record<string, MetricSpec>;

export type MetricName = keyof typeof metricCatalogue;
export const metricNames = Object.keys(metricCatalogue) as MetricName[];

export function metricsForKind(kind: DeviceKind): MetricName[] {
  return metricNames.filter((m) =>
    (metricCatalogue[m].kinds as readonly DeviceKind[]).includes(kind),
  );
}

export function isMetricName(name: string): name is MetricName {
  return Object.hasOwn(metricCatalogue, name);
}
