/**
 * Pure logic of security events: storing text an attacker wrote, and aggregating refusals so that
 * no number of them can turn into as many database writes or as much memory.
 */

/**
 * Code points escaped in text from a device: C0 and C1 controls (NUL first: PostgreSQL text and
 * jsonb refuse U+0000), DEL, lone surrogates (not UTF-8 at all: jsonb refuses the escape, text
 * would silently become U+FFFD), line/paragraph separators, and the invisible bidirectional
 * controls that make a topic read as something else on screen (CVE-2021-42574, "Trojan Source").
 * The backslash itself is escaped so the form stays unambiguous.
 */
const MUST_ESCAPE =
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  /[\\\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * A device-supplied string as it is stored: printable text unchanged, a backslash doubled, and
 * every other character of MUST_ESCAPE as `\uXXXX` (four lowercase hex digits). Storable in
 * PostgreSQL text and jsonb whatever the input, readable, and reversible by unescapeDeviceText.
 */
export function escapeDeviceText(s: string): string {
  return s.replace(MUST_ESCAPE, (c) =>
    c === '\\' ? '\\\\' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** The inverse of escapeDeviceText (for tools and tests that need the bytes the device sent). */
export function unescapeDeviceText(s: string): string {
  return s.replace(/\\(\\|u[0-9a-f]{4})/g, (_m, e: string) =>
    e === '\\' ? '\\' : String.fromCharCode(parseInt(e.slice(1), 16)),
  );
}

/** Every string in a JSON-like value (keys too) escaped; numbers, booleans and null as they are. */
export function escapeDeviceValue(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return escapeDeviceText(value);
  if (value === null || typeof value !== 'object' || depth > 8)
    return typeof value === 'object' ? null : value;
  if (Array.isArray(value)) return value.map((v) => escapeDeviceValue(v, depth + 1));
  if (value instanceof Date) return value.toISOString();
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>).map(([k, v]) => [
      escapeDeviceText(k),
      escapeDeviceValue(v, depth + 1),
    ]),
  );
}

/** A sample of what was attempted: at most maxChars UTF-16 units, with the original length when cut. */
export interface Sample {
  text: string;
  /** Length of the original in UTF-16 units, present only when `text` is a prefix of it. */
  truncatedFrom?: number;
}

export function sampleOf(target: string, maxChars: number): Sample {
  if (target.length <= maxChars) return { text: target };
  let cut = target.slice(0, maxChars);
  // Do not end inside a surrogate pair: the half would become a lone surrogate of our making.
  if (/[\ud800-\udbff]$/.test(cut)) cut = cut.slice(0, -1);
  return { text: cut, truncatedFrom: target.length };
}

/** One refusal, as the broker, the firmware download server or the HTTP API reports it. */
export interface SecurityEvent {
  /** `security.<what>`, e.g. security.subscribe_denied, security.tls_refused. A code constant. */
  action: string;
  /** A code constant (`not_own_topic`, `CERT_REVOKED`): events are aggregated per reason. */
  reason: string;
  deviceId?: string | undefined;
  certSerial?: string | undefined;
  certFingerprint?: string | undefined;
  /**
   * `certSerial` chains to our CA (only its status or the CONNECT was wrong): the record names
   * its device. Not for a foreign certificate, whose serial an attacker picks at will.
   */
  ourCertificate?: boolean | undefined;
  ip?: string | undefined;
  /** What was attempted (a topic, a filter, a client id, a URL): device text, escaped when stored. */
  target: string;
  /** `mqtt`, `tls`, `https`: where it happened. */
  targetType?: string | undefined;
  /** Further context of the first event of a window (numbers, codes). */
  details?: Record<string, unknown> | undefined;
}

/** What gets written: one per key and window (the first event of a quiet key is written at once). */
export interface AggregateRecord {
  action: string;
  reason: string;
  /** `device:<id>`, `cert:<serial>`, `ip:<address>`, or `overflow` (keys beyond the cap). */
  subject: string;
  deviceId: string | undefined;
  certSerial: string | undefined;
  certFingerprint: string | undefined;
  ourCertificate: boolean;
  ip: string | undefined;
  targetType: string;
  count: number;
  samples: Sample[];
  firstAt: Date;
  lastAt: Date;
  details: Record<string, unknown>;
}

export interface AggregatorLimits {
  windowMs: number;
  /**
   * Distinct (action, subject, reason) keys held at once, for known subjects (a device, a
   * certificate of ours) and again for unknown ones (an address, a foreign certificate); beyond,
   * events count into `overflow`. Apart, so that subjects anyone can mint (a new self-signed
   * certificate per handshake) never push a known device's refusals out of their own record.
   */
  maxKeys: number;
  maxSamples: number;
  maxSampleChars: number;
}

interface KeyState {
  known: boolean;
  windowStart: number;
  first: SecurityEvent;
  count: number;
  samples: Sample[];
  firstAt: number;
  lastAt: number;
}

export function subjectOf(e: Pick<SecurityEvent, 'deviceId' | 'certSerial' | 'ip'>): string {
  if (e.deviceId) return `device:${e.deviceId}`;
  if (e.certSerial) return `cert:${e.certSerial}`;
  return `ip:${e.ip ?? 'unknown'}`;
}

/**
 * Per (action, subject, reason): the first event of a quiet key becomes a record at once (count 1),
 * later ones in the same window are counted, with a few distinct samples, into one record when
 * the window ends. Memory is bounded by 2 × maxKeys × maxSamples × maxSampleChars whatever arrives.
 */
export class Aggregator {
  private readonly keys = new Map<string, KeyState>();
  private readonly overflow = new Map<string, KeyState>();
  /** Keys held per class: known subjects (a device, a certificate of ours) and the others. */
  private readonly held = { known: 0, unknown: 0 };

  constructor(private readonly limits: AggregatorLimits) {}

  get size(): number {
    return this.keys.size + this.overflow.size;
  }

  /** Counts one event; returns the record to write now, if it opens a key. */
  add(event: SecurityEvent, now: number): AggregateRecord | undefined {
    const subject = subjectOf(event);
    const key = `${event.action}\u0000${subject}\u0000${event.reason}`;
    const state = this.keys.get(key);
    if (state) {
      this.count(state, event.target, now);
      return undefined;
    }
    const known = event.deviceId !== undefined || event.ourCertificate === true;
    if (this.held[known ? 'known' : 'unknown'] >= this.limits.maxKeys) {
      // The overflow buckets are keyed by action and reason (code constants), so they are few.
      const okey = `${event.action}\u0000${event.reason}`;
      const o = this.overflow.get(okey);
      if (o) this.count(o, subject, now);
      else
        this.overflow.set(okey, {
          known,
          windowStart: now,
          first: event,
          count: 1,
          samples: [sampleOf(subject, this.limits.maxSampleChars)],
          firstAt: now,
          lastAt: now,
        });
      return undefined;
    }
    this.held[known ? 'known' : 'unknown']++;
    this.keys.set(key, {
      known,
      windowStart: now,
      first: event,
      count: 0,
      samples: [],
      firstAt: now,
      lastAt: now,
    });
    return this.toRecord(
      event,
      subject,
      1,
      [sampleOf(event.target, this.limits.maxSampleChars)],
      now,
      now,
    );
  }

  /** Records of the windows that have ended by `now` (all of them with `all`); forgets quiet keys. */
  due(now: number, all = false): AggregateRecord[] {
    const out: AggregateRecord[] = [];
    for (const [key, s] of this.keys) {
      if (!all && now - s.windowStart < this.limits.windowMs) continue;
      if (s.count > 0)
        out.push(
          this.toRecord(s.first, subjectOf(s.first), s.count, s.samples, s.firstAt, s.lastAt),
        );
      if (s.count === 0 || all) {
        this.keys.delete(key);
        this.held[s.known ? 'known' : 'unknown']--;
      } else Object.assign(s, { windowStart: now, count: 0, samples: [] });
    }
    for (const [key, s] of this.overflow) {
      if (!all && now - s.windowStart < this.limits.windowMs) continue;
      out.push(
        this.toRecord(
          {
            ...s.first,
            deviceId: undefined,
            certSerial: undefined,
            certFingerprint: undefined,
            ip: undefined,
          },
          'overflow',
          s.count,
          s.samples,
          s.firstAt,
          s.lastAt,
        ),
      );
      this.overflow.delete(key);
    }
    return out;
  }

  /** In an overflow bucket the samples are subjects (who was not given a key), elsewhere targets. */
  private count(s: KeyState, sampled: string, now: number): void {
    if (s.count === 0) s.firstAt = now;
    s.count++;
    s.lastAt = now;
    if (s.samples.length >= this.limits.maxSamples) return;
    const sample = sampleOf(sampled, this.limits.maxSampleChars);
    if (!s.samples.some((x) => x.text === sample.text)) s.samples.push(sample);
  }

  private toRecord(
    e: SecurityEvent,
    subject: string,
    count: number,
    samples: Sample[],
    firstAt: number,
    lastAt: number,
  ): AggregateRecord {
    return {
      action: e.action,
      reason: e.reason,
      subject,
      deviceId: e.deviceId,
      certSerial: e.certSerial,
      certFingerprint: e.certFingerprint,
      ourCertificate: e.ourCertificate === true,
      ip: e.ip,
      targetType: e.targetType ?? 'mqtt',
      count,
      samples,
      firstAt: new Date(firstAt),
      lastAt: new Date(lastAt),
      details: e.details ?? {},
    };
  }
}
