/**
 * The pure rules of the field records (issue 19): what a plausible feeding or collection is, and
 * when a collection point will be full. No I/O, so they are tested as properties
 * (field-fns.test.ts).
 */

/** One entry of food waste into a digester: above 0, at most 1 t (a large school kitchen's day is ~300 kg). */
export const FEED_KG_MAX = 1000;
/** One collection: above 0, at most 5 t (a skip; a wheelie bin holds ~100 kg). */
export const COLLECTION_KG_MAX = 5000;
/** How far ahead of the server's clock a time may be: a phone's clock may be a little fast. */
export const CLOCK_SKEW_MS = 5 * 60_000;
/** How long after recording its author may still correct or void a feeding. */
export const CORRECTION_WINDOW_DAYS = 7;
export const NOTE_MAX = 500;

export type TimeProblem = 'future' | 'before-unit';

/** Why an instant cannot be the time of a field record, or undefined when it can. */
export function timeProblem(
  at: Date,
  ctx: { now: Date; unitCreatedAt: Date },
): TimeProblem | undefined {
  if (at.getTime() > ctx.now.getTime() + CLOCK_SKEW_MS) return 'future';
  if (at.getTime() < ctx.unitCreatedAt.getTime()) return 'before-unit';
  return undefined;
}

export interface FillPoint {
  /** ms since the epoch. */
  readonly t: number;
  /** fill_level_pct, 0..100. */
  readonly pct: number;
}

/** A fall of at least this many percentage points between two readings is an emptying. */
export const EMPTYING_DROP_PCT = 20;
/** The fit looks back at most this far (older readings say little about today's rate). */
export const FORECAST_WINDOW_MS = 72 * 3_600_000;
/** Fewer readings, or a shorter span, is not a trend. */
export const FORECAST_MIN_POINTS = 4;
export const FORECAST_MIN_SPAN_MS = 60 * 60_000;
/** A slope below this (percentage points per hour) is not rising: "no forecast". */
export const FORECAST_MIN_SLOPE_PER_HOUR = 0.05;
/** Nor is a slope within 3 standard errors of zero: a flat bin's sensor noise is not a trend. */
export const FORECAST_MIN_T = 3;

export type Forecast =
  | {
      readonly kind: 'forecast';
      /** Least-squares slope, percentage points per hour. */
      readonly slopePerHour: number;
      /** The fitted fill level now (may differ from the last, noisy reading). */
      readonly fittedNow: number;
      /** When the fitted line reaches 100 %; `now` or earlier means full already. */
      readonly fullAt: Date;
      readonly points: number;
    }
  | {
      readonly kind: 'none';
      readonly reason: 'too-few-readings' | 'not-rising' | 'emptied';
      readonly points: number;
    };

/**
 * The readings the fill rate is fitted on: those of the last FORECAST_WINDOW_MS after the last
 * emptying, which is the later of the last recorded collection and the last fall of at least
 * EMPTYING_DROP_PCT between consecutive readings (a bin emptied without a record still starts a
 * new fill).
 */
export function sinceEmptying(
  points: readonly FillPoint[],
  opts: { now: Date; lastCollectedAt?: Date | null | undefined },
): FillPoint[] {
  const sorted = [...points]
    .filter((p) => Number.isFinite(p.t) && Number.isFinite(p.pct))
    .sort((a, b) => a.t - b.t);
  let from = opts.now.getTime() - FORECAST_WINDOW_MS;
  if (opts.lastCollectedAt) from = Math.max(from, opts.lastCollectedAt.getTime());
  let start = 0;
  for (let i = 1; i < sorted.length; i++)
    if (sorted[i - 1]!.pct - sorted[i]!.pct >= EMPTYING_DROP_PCT) start = i;
  return sorted.slice(start).filter((p) => p.t >= from && p.t <= opts.now.getTime());
}

/**
 * When a collection point will be full: ordinary least squares of fill level on time over the
 * readings since the last emptying (sinceEmptying); the fitted line, extended, crosses 100 % at
 * `fullAt`. No forecast without a rising trend: too few readings, too short a span, or a slope
 * under FORECAST_MIN_SLOPE_PER_HOUR or within FORECAST_MIN_T standard errors of zero.
 */
export function fillForecast(
  points: readonly FillPoint[],
  opts: { now: Date; lastCollectedAt?: Date | null | undefined },
): Forecast {
  const fit = sinceEmptying(points, opts);
  const n = fit.length;
  if (n === 0 && opts.lastCollectedAt) return { kind: 'none', reason: 'emptied', points: 0 };
  if (n < FORECAST_MIN_POINTS || fit[n - 1]!.t - fit[0]!.t < FORECAST_MIN_SPAN_MS)
    return { kind: 'none', reason: 'too-few-readings', points: n };
  // Hours from the first reading, so that the sums stay well-conditioned.
  const t0 = fit[0]!.t;
  const xs = fit.map((p) => (p.t - t0) / 3_600_000);
  const meanX = xs.reduce((a, b) => a + b, 0) / n;
  const meanY = fit.reduce((a, p) => a + p.pct, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i]! - meanX) * (fit[i]!.pct - meanY);
    sxx += (xs[i]! - meanX) ** 2;
  }
  const slope = sxx > 0 ? sxy / sxx : 0;
  let ssr = 0;
  for (let i = 0; i < n; i++) ssr += (fit[i]!.pct - (meanY + slope * (xs[i]! - meanX))) ** 2;
  const standardError = Math.sqrt(ssr / (n - 2) / sxx);
  if (!(slope >= FORECAST_MIN_SLOPE_PER_HOUR) || slope < FORECAST_MIN_T * standardError)
    return { kind: 'none', reason: 'not-rising', points: n };
  const nowH = (opts.now.getTime() - t0) / 3_600_000;
  const fittedNow = meanY + slope * (nowH - meanX);
  const hoursToFull = (100 - fittedNow) / slope;
  return {
    kind: 'forecast',
    slopePerHour: slope,
    fittedNow,
    fullAt: new Date(opts.now.getTime() + hoursToFull * 3_600_000),
    points: n,
  };
}

export interface DueInput {
  readonly unitId: string;
  /** The latest fill level and its time, if any. */
  readonly fill: { readonly pct: number; readonly ts: Date } | null;
  readonly lastCollectedAt: Date | null;
  readonly forecast: Forecast;
}

export interface DueItem extends DueInput {
  /** Emptied after its latest fill reading: the reading is from before, the bin is near empty. */
  readonly collectedSinceReading: boolean;
  /** At or above the threshold (and not collected since). */
  readonly due: boolean;
  /** Its latest fill reading is older than the expected interval (or there is none): shown as such. */
  readonly stale: boolean;
  /** When it is (or was) full, as far as known: the sort key (ms; +Infinity: not known). */
  readonly fullBy: number;
}

/**
 * When a point will be full, as the order uses it: a reading at 100 % means full now; a
 * forecast means its time (or now, if the reading is over the threshold and the line lags);
 * over the threshold without a forecast counts as "now" (it needs collecting); otherwise not
 * known. A point emptied after its latest reading is not full until it reports again.
 */
export function fullBy(
  i: DueInput,
  needsAt: number,
  now: number,
  collectedSinceReading: boolean,
): number {
  if (collectedSinceReading || i.fill == null) return Number.POSITIVE_INFINITY;
  if (i.fill.pct >= 100)
    return Math.min(now, i.forecast.kind === 'forecast' ? i.forecast.fullAt.getTime() : now);
  if (i.forecast.kind === 'forecast') return i.forecast.fullAt.getTime();
  return i.fill.pct >= needsAt ? now : Number.POSITIVE_INFINITY;
}

/**
 * The one collection order, for the "needs collection" list and the /collection page alike:
 * soonest full first (fullBy), so a point that will be full sooner never comes after one that
 * will be full later; ties, and the points with no known full time, fullest first. A point
 * collected after its latest fill reading counts as empty until it reports again (it leaves the
 * top as soon as the collector marks it). A stale point keeps its place (it may well be full)
 * but is marked, so no page shows its old value as current. A point with its own fill threshold
 * (a technician's override) is due at its own level.
 */
export function needsCollectionOrder(
  items: readonly DueInput[],
  needsAt: number | ((unitId: string) => number),
  opts: { now?: number; staleAfterMs?: number } = {},
): DueItem[] {
  const levelOf = typeof needsAt === 'number' ? () => needsAt : needsAt;
  const now = opts.now ?? Date.now();
  const staleAfter = opts.staleAfterMs ?? Number.POSITIVE_INFINITY;
  const out = items.map((i): DueItem => {
    const collectedSinceReading =
      i.lastCollectedAt != null && (i.fill == null || i.lastCollectedAt >= i.fill.ts);
    const pct = collectedSinceReading ? null : (i.fill?.pct ?? null);
    return {
      ...i,
      collectedSinceReading,
      due: pct != null && pct >= levelOf(i.unitId),
      stale: i.fill == null || now - i.fill.ts.getTime() > staleAfter,
      fullBy: fullBy(i, levelOf(i.unitId), now, collectedSinceReading),
    };
  });
  const pct = (i: DueItem) => (i.collectedSinceReading ? -1 : (i.fill?.pct ?? -1));
  const key = (i: DueItem) => (i.fullBy === Number.POSITIVE_INFINITY ? 1 : 0);
  return out.sort(
    (a, b) =>
      key(a) - key(b) ||
      (key(a) === 0 && a.fullBy !== b.fullBy ? a.fullBy - b.fullBy : 0) ||
      pct(b) - pct(a) ||
      a.unitId.localeCompare(b.unitId),
  );
}

/**
 * A `datetime-local` value ("2026-11-30T14:05") read on the clock of `timeZone` (never the
 * server's), as field.js reads it: the instant, or undefined for an empty or malformed value.
 * Used when a form is posted without its script.
 */
export function instantOfLocal(wall: string | undefined, timeZone: string): Date | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})$/.exec(wall ?? '');
  if (!m) return undefined;
  const offset = (ms: number) => {
    const p: Record<string, string> = {};
    for (const x of new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    }).formatToParts(new Date(ms)))
      p[x.type] = x.value;
    return Date.UTC(+p.year!, +p.month! - 1, +p.day!, +p.hour!, +p.minute!, +p.second!) - ms;
  };
  const asUtc = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!);
  const first = asUtc - offset(asUtc);
  const t = asUtc - offset(first); // once more across an offset change
  return Number.isFinite(t) ? new Date(t) : undefined;
}
