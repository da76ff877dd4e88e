import { gaussian } from './random.ts';

/**
 * Physical models of the two kinds of unit, stepped in simulated time. Not noise around a
 * constant: each quantity follows the process that drives it, so dashboards and alerts see the
 * shapes a real site produces. Times are ms since the epoch; Kenya is UTC+3 all year.
 */

const HOUR = 3_600_000;
const localHour = (t: number): number => (((t / HOUR + 3) % 24) + 24) % 24;
const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));

/** Kitchen rhythm: food waste goes in after meals; gas is burnt while cooking. */
const FEEDING_HOURS = [8.5, 13.5, 19.5];
const COOKING = [
  [5.5, 7.5],
  [11, 13],
  [17, 19.5],
] as const;

export interface DigesterState {
  t: number;
  /** Undigested substrate in the tank (kg volatile solids). */
  substrate: number;
  /** Biogas in the holder (litres). */
  stored: number;
  /** Slurry temperature (°C), following the day with a lag and a slow drift. */
  temperature: number;
  drift: number;
  ph: number;
  slurryLevel: number;
  /** Gas produced since the last step, per minute (L/min). */
  production: number;
  battery: number;
  fedToday: Set<number>;
}

export interface DigesterOptions {
  /** Daily feed relative to what the digester can take; > 1 over-feeds it (pH falls). */
  load: number;
  holderLitres: number;
}

export function initialDigester(t: number, rand: () => number): DigesterState {
  return {
    t,
    substrate: 8 + rand() * 4,
    stored: 300 + rand() * 200,
    temperature: 34 + rand() * 2,
    drift: 0,
    ph: 7.1 + gaussian(rand, 0.05),
    slurryLevel: 70 + rand() * 10,
    production: 0,
    battery: 3.9 + rand() * 0.2,
    fedToday: new Set(),
  };
}

export function stepDigester(
  s: DigesterState,
  t: number,
  rand: () => number,
  o: DigesterOptions,
): DigesterState {
  const dtMin = Math.max(0, (t - s.t) / 60_000);
  const hour = localHour(t);
  const day = Math.floor((t + 3 * HOUR) / (24 * HOUR));
  const fedToday =
    s.fedToday.size > 0 && [...s.fedToday][0]! >= day * 10
      ? new Set(s.fedToday)
      : new Set<number>();
  let substrate = s.substrate;
  let slurry = s.slurryLevel;
  for (const [i, h] of FEEDING_HOURS.entries()) {
    const key = day * 10 + i;
    if (hour >= h && !fedToday.has(key)) {
      fedToday.add(key);
      const feed = (2 + rand()) * o.load;
      substrate += feed;
      slurry = clamp(slurry + feed * 0.4, 0, 100);
    }
  }
  // First-order digestion: gas follows feeding with the tank's lag (~ hours), faster when warm.
  const rate = 0.004 * Math.exp((s.temperature - 35) / 10); // per minute
  const digested = substrate * (1 - Math.exp(-rate * dtMin));
  substrate -= digested;
  const produced = digested * 400; // L of biogas per kg VS
  const cooking = COOKING.some(([a, b]) => hour >= a && hour < b);
  const burnt = cooking ? Math.min(s.stored + produced, 9 * dtMin) : 0; // a two-burner stove
  const stored = clamp(s.stored + produced - burnt, 0, o.holderLitres * 1.1);
  // Ambient day: warmest mid-afternoon; the tank follows slowly; drift is a slow random walk.
  const drift = clamp(s.drift + gaussian(rand, 0.002 * Math.sqrt(dtMin)), -2, 2);
  const ambient = 24 + 5 * Math.sin(((hour - 9) / 24) * 2 * Math.PI);
  const target = 35 + (ambient - 24) * 0.3 + drift;
  const temperature = s.temperature + (target - s.temperature) * (1 - Math.exp(-dtMin / 180));
  // Over-feeding acidifies (volatile fatty acids outrun the methanogens): pH is pulled down in
  // proportion to the excess load and recovers slowly towards 7.2 when feeding is right.
  const acidification = Math.max(0, o.load - 1.2) * 0.0005 * dtMin;
  const ph = clamp(s.ph + (7.2 - s.ph) * (1 - Math.exp(-dtMin / 600)) - acidification, 5, 8.5);
  slurry = clamp(slurry - 0.002 * dtMin, 0, 100); // digestate overflow
  return {
    t,
    substrate,
    stored,
    temperature,
    drift,
    ph,
    slurryLevel: slurry,
    production: dtMin > 0 ? produced / dtMin : 0,
    battery: clamp(
      s.battery - 0.000002 * dtMin + (hour > 10 && hour < 15 ? 0.00001 * dtMin : 0),
      3.3,
      4.2,
    ),
    fedToday,
  };
}

/** What the digester's sensors report (with instrument noise). */
export function digesterReadings(s: DigesterState, o: DigesterOptions, rand: () => number) {
  const methane = clamp(60 - Math.max(0, 7 - s.ph) * 15 + gaussian(rand, 0.5), 0, 100);
  return {
    temperature_c: round(s.temperature + gaussian(rand, 0.05), 2),
    ph: round(s.ph + gaussian(rand, 0.02), 2),
    biogas_pressure_kpa: round(
      Math.max(0, (s.stored / o.holderLitres) * 8 + gaussian(rand, 0.05)),
      2,
    ),
    methane_pct: round(methane, 1),
    gas_flow_lpm: round(Math.max(0, s.production + gaussian(rand, 0.05)), 2),
    slurry_level_pct: round(s.slurryLevel, 1),
    h2s_ppm: Math.round(clamp(300 + (7.2 - s.ph) * 400 + gaussian(rand, 20), 0, 10_000)),
    battery_v: round(s.battery, 3),
    rssi_dbm: Math.round(clamp(-70 + gaussian(rand, 4), -150, 0)),
  };
}

export interface BinState {
  t: number;
  weight: number;
  lidOpenUntil: number;
  lastCollection: number;
  battery: number;
}

export interface BinOptions {
  capacityKg: number;
  /** Local hours at which the collector empties the bin. */
  collectionHours: number[];
}

export function initialBin(t: number, rand: () => number): BinState {
  return {
    t,
    weight: rand() * 40,
    lidOpenUntil: 0,
    lastCollection: t,
    battery: 3.9 + rand() * 0.2,
  };
}

/** Waste arrives around meals (a lid opening each time), and a collection empties the bin. */
export function stepBin(s: BinState, t: number, rand: () => number, o: BinOptions): BinState {
  const dtMin = Math.max(0, (t - s.t) / 60_000);
  const hour = localHour(t);
  const mealIntensity = FEEDING_HOURS.reduce(
    (a, h) => a + Math.exp(-((hour - (h - 1)) ** 2) / 0.5),
    0,
  );
  let weight = s.weight;
  let lidOpenUntil = s.lidOpenUntil;
  if (rand() < 1 - Math.exp(-0.05 * mealIntensity * dtMin)) {
    weight += 2 + rand() * 6;
    lidOpenUntil = t + 30_000 + rand() * 60_000;
  }
  let lastCollection = s.lastCollection;
  const day = Math.floor((t + 3 * HOUR) / (24 * HOUR));
  for (const h of o.collectionHours) {
    const at = (day * 24 + h - 3) * HOUR;
    if (s.t < at && t >= at) {
      weight = rand() * 2; // emptied: a weight drop
      lastCollection = t;
    }
  }
  return {
    t,
    weight: Math.min(weight, o.capacityKg * 1.2),
    lidOpenUntil,
    lastCollection,
    battery: clamp(s.battery - 0.000002 * dtMin, 3.3, 4.2),
  };
}

export function binReadings(s: BinState, o: BinOptions, rand: () => number) {
  return {
    fill_level_pct: round(clamp((s.weight / o.capacityKg) * 100, 0, 100), 1),
    weight_kg: round(Math.max(0, s.weight + gaussian(rand, 0.1)), 2),
    temperature_c: round(24 + gaussian(rand, 0.3), 1),
    lid_open: s.lidOpenUntil > s.t,
    battery_v: round(s.battery, 3),
    rssi_dbm: Math.round(clamp(-75 + gaussian(rand, 4), -150, 0)),
  };
}

const round = (v: number, digits: number): number => Math.round(v * 10 ** digits) / 10 ** digits;
