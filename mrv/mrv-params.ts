import { z } from 'zod';

/**
 * The parameters of a report, each with its source; a site may override any of them (table
 * mrv_site_parameters), and the report carries the values it used. docs/mrv.md explains them.
 */

const sourced = <T extends z.ZodType>(value: T) => z.object({ value, source: z.string().min(1) });

export const mrvParamsSchema = z.object({
  /** Normal conditions of Nm³: 0 °C and 101.325 kPa (DIN 1343, as used by the CDM tools). */
  normalTemperatureK: sourced(z.number().positive()),
  normalPressureKpa: sourced(z.number().positive()),
  /** Atmospheric pressure at the site: the gauge pressure reported is added to it. */
  ambientPressureKpa: sourced(z.number().min(50).max(110)),
  /** Used when a reading carries no biogas_pressure_kpa (gauge). */
  assumedGaugePressureKpa: sourced(z.number().min(0).max(100)),
  /** Used when a reading carries no temperature, or when reported temperatures are not used. */
  assumedGasTemperatureC: sourced(z.number().min(-40).max(100)),
  /** Take the digester's temperature_c as the gas temperature at the meter. */
  useReportedTemperature: sourced(z.boolean()),
  methaneDensityKgPerNm3: sourced(z.number().positive()),
  methaneLhvMjPerKg: sourced(z.number().positive()),
  gwpCh4: sourced(z.number().positive()),
  /** Displaced fuel: what the biogas replaces in the kitchen. */
  baselineFuel: sourced(z.string().min(1)),
  baselineEmissionFactorKgCo2ePerMj: sourced(z.number().min(0)),
  /** Share of the metered methane that would have been vented without the digester (0: not claimed). */
  methaneVentedFractionBaseline: sourced(z.number().min(0).max(1)),
  /** The reporting interval devices are expected to keep: completeness counts these slots. */
  intervalSeconds: sourced(z.number().int().min(1).max(86_400)),
  /** Exclude flow and methane readings not covered by a passed calibration. */
  requireCalibration: sourced(z.boolean()),
});

export type MrvParams = z.infer<typeof mrvParamsSchema>;

export const DEFAULT_MRV_PARAMS: MrvParams = {
  normalTemperatureK: {
    value: 273.15,
    source: 'normal conditions 0 °C (DIN 1343; UNFCCC CDM tools use 0 °C, 101.325 kPa)',
  },
  normalPressureKpa: { value: 101.325, source: 'normal conditions 101.325 kPa (DIN 1343)' },
  ambientPressureKpa: {
    value: 101.325,
    source:
      'assumption: sea-level standard atmosphere; set the site value (e.g. ~82 kPa in Nairobi, ~1 800 m)',
  },
  assumedGaugePressureKpa: {
    value: 0,
    source: 'assumption when not measured: 0 kPa gauge (conservative: lowest Nm³)',
  },
  assumedGasTemperatureC: {
    value: 35,
    source:
      'assumption when not measured: 35 °C, mesophilic digester (conservative against cooler gas)',
  },
  useReportedTemperature: {
    value: true,
    source: 'the digester temperature_c is taken as the gas temperature at the meter',
  },
  methaneDensityKgPerNm3: {
    value: 0.7168,
    source: 'CH4 density at 0 °C, 101.325 kPa (NIST Chemistry WebBook; ideal gas 0.7157)',
  },
  methaneLhvMjPerKg: {
    value: 50.0,
    source: 'CH4 net calorific value 50.0 MJ/kg (ISO 6976: 50.03 MJ/kg, rounded down)',
  },
  gwpCh4: { value: 27.0, source: 'IPCC AR6 WG1 (2021) Table 7.15, GWP-100 of non-fossil methane' },
  baselineFuel: { value: 'LPG', source: 'assumption: the kitchen would burn LPG' },
  baselineEmissionFactorKgCo2ePerMj: {
    value: 0.0631,
    source: 'IPCC 2006 Guidelines Vol. 2 Table 1.4: LPG 63 100 kg CO2/TJ',
  },
  methaneVentedFractionBaseline: {
    value: 0,
    source: 'not claimed: avoided methane venting counts only when a methodology establishes it',
  },
  intervalSeconds: { value: 60, source: 'device contract: one reading a minute' },
  requireCalibration: {
    value: false,
    source:
      'calibration records are listed; readings outside a passed calibration are excluded only when required',
  },
};

/** A site's overrides (values only, or value and source) on top of the defaults. */
export const mrvParamOverridesSchema = z
  .object(
    Object.fromEntries(
      Object.entries(mrvParamsSchema.shape).map(([k, s]) => [
        k,
        z
          .union([
            s.shape.value,
            z.object({ value: s.shape.value, source: z.string().min(1).optional() }),
          ])
          .optional(),
      ]),
    ) as unknown as {
      [K in keyof MrvParams]: z.ZodOptional<
        z.ZodType<MrvParams[K]['value'] | { value: MrvParams[K]['value']; source?: string }>
      >;
    },
  )
  .strict();

export type MrvParamOverrides = z.infer<typeof mrvParamOverridesSchema>;

export function resolveParams(overrides: unknown, who = 'site parameter'): MrvParams {
  const parsed = mrvParamOverridesSchema.parse(overrides ?? {});
  const out: Record<string, { value: unknown; source: string }> = { ...DEFAULT_MRV_PARAMS };
  for (const [key, o] of Object.entries(parsed)) {
    if (o === undefined) continue;
    const value = typeof o === 'object' && o !== null && 'value' in o ? o.value : o;
    const source =
      typeof o === 'object' && o !== null && 'source' in o && o.source
        ? o.source
        : `set by ${who}, no source given (replaces: ${DEFAULT_MRV_PARAMS[key as keyof MrvParams].source})`;
    out[key] = { value, source };
  }
  return mrvParamsSchema.parse(out);
}
