import { microsToIso, type RawReading } from './mrv-encoding.ts';

/**
 * Which device calibration produced which readings of a report (issues 20, 21). A device applies
 * a configuration version at an instant (device-config, ADR 0013); the readings it makes from then
 * until the next applied version carry that version's offset and gain per metric. Before its
 * first applied version a device runs its factory calibration (version null).
 *
 * The report lists, per device, each span clipped to the period with the version, its calibration
 * and how many of the report's readings fall in it. Readings arrive in leaf order (one device
 * after another, each in time order), so one pointer per device finds each reading's span.
 */

export interface DeviceCalibrationSpan {
  version: number;
  calibration: Readonly<Record<string, { offset: number; gain: number }>>;
  /** The device's appliedAt (inclusive). */
  from: Date;
  /** The next version's appliedAt (exclusive), or null while it is still in use. */
  until: Date | null;
}

export interface CalibrationUse {
  deviceId: string;
  /** null: the factory calibration, before the device applied any configuration version. */
  version: number | null;
  calibration: Readonly<Record<string, { offset: number; gain: number }>> | null;
  from: string;
  to: string;
  readings: number;
}

const us = (d: Date) => BigInt(d.getTime()) * 1000n;

interface Slot {
  use: CalibrationUse;
  fromUs: bigint;
  toUs: bigint;
}

/** Spans of one device clipped to [start, end), with the factory span before the first version. */
function slotsOf(
  deviceId: string,
  spans: readonly DeviceCalibrationSpan[],
  start: bigint,
  end: bigint,
): Slot[] {
  const slots: Slot[] = [];
  const add = (
    version: number | null,
    calibration: CalibrationUse['calibration'],
    a: bigint,
    b: bigint,
  ) => {
    const fromUs = a > start ? a : start;
    const toUs = b < end ? b : end;
    if (toUs > fromUs)
      slots.push({
        use: {
          deviceId,
          version,
          calibration,
          from: microsToIso(fromUs),
          to: microsToIso(toUs),
          readings: 0,
        },
        fromUs,
        toUs,
      });
  };
  const sorted = [...spans].sort((a, b) => a.from.getTime() - b.from.getTime());
  add(null, null, start, sorted[0] ? us(sorted[0].from) : end);
  for (const s of sorted) add(s.version, s.calibration, us(s.from), s.until ? us(s.until) : end);
  return slots;
}

export function createCalibrationCounter(
  period: { startMicros: bigint; endMicros: bigint },
  spansByDevice: ReadonlyMap<string, readonly DeviceCalibrationSpan[]>,
) {
  const byDevice = new Map<string, Slot[]>();
  for (const [id, spans] of [...spansByDevice].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    byDevice.set(id, slotsOf(id, spans, period.startMicros, period.endMicros));
  let device: string | undefined;
  let slots: Slot[] = [];
  let i = 0;
  return {
    add(r: Pick<RawReading, 'deviceId' | 'tsMicros'>): void {
      if (r.deviceId !== device) {
        device = r.deviceId;
        let s = byDevice.get(device);
        // A device whose history was not asked for (it left the unit): its readings count under
        // the factory span, which is what is known of it.
        if (!s) {
          s = slotsOf(device, [], period.startMicros, period.endMicros);
          byDevice.set(device, s);
        }
        slots = s;
        i = 0;
      }
      while (i < slots.length - 1 && r.tsMicros >= slots[i]!.toUs) i += 1;
      slots[i]!.use.readings += 1;
    },
    /** Every device's spans, devices in byte order, each in time order. */
    finish(): CalibrationUse[] {
      return [...byDevice.entries()]
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .flatMap(([, s]) => s.map((x) => x.use));
    },
  };
}
