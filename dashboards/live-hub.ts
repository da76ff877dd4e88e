import type { RowIn } from '../ingest/batch-writer.ts';

/**
 * Live updates for the dashboards (Server-Sent Events). Stored readings are coalesced per device
 * and flushed every `flushMs` (one event per subscriber and flush, however fast devices report);
 * alert and presence events go out at once. Each subscriber sees only the units it may see.
 *
 * In-process: one gateway runs ingest and the API (as it runs the broker, broker/presence.ts).
 */

export type LiveEvent =
  | {
      type: 'readings';
      readings: { deviceId: string; unitId: string; ts: string; values: Record<string, number> }[];
    }
  | {
      type: 'alert';
      alert: {
        id: number;
        unitId: string;
        deviceId: string;
        ruleId: string;
        title: string;
        severity: string;
        status: string;
        value: number | null;
      };
    }
  | { type: 'device'; device: { id: string; unitId: string; online: boolean; at: string } };

export interface Subscriber {
  /** Units it may see; `all` for fleet-wide roles. */
  visible(): 'all' | ReadonlySet<string>;
  send(event: LiveEvent): void;
}

export function createLiveHub(opts: { flushMs?: number } = {}) {
  const subscribers = new Set<Subscriber>();
  const pending = new Map<
    string,
    { deviceId: string; unitId: string; ts: Date; values: Record<string, number> }
  >();
  const flushMs = opts.flushMs ?? 500;
  let timer: NodeJS.Timeout | undefined;

  const sees = (s: Subscriber, unitId: string): boolean => {
    const v = s.visible();
    return v === 'all' || v.has(unitId);
  };

  function flush(): void {
    timer = undefined;
    const readings = [...pending.values()].map((r) => ({
      deviceId: r.deviceId,
      unitId: r.unitId,
      ts: r.ts.toISOString(),
      values: r.values,
    }));
    pending.clear();
    for (const s of subscribers) {
      const own = readings.filter((r) => sees(s, r.unitId));
      if (own.length > 0) s.send({ type: 'readings', readings: own });
    }
  }

  return {
    subscribe(s: Subscriber): () => void {
      subscribers.add(s);
      return () => void subscribers.delete(s);
    },
    subscribers: (): number => subscribers.size,
    /** Called with every committed batch of stored readings; cheap when nobody watches. */
    stored(rows: readonly RowIn[]): void {
      if (subscribers.size === 0) return;
      for (const r of rows) {
        const cur = pending.get(r.deviceId);
        // The newest instant wins; metrics it lacks keep the values already pending.
        if (!cur)
          pending.set(r.deviceId, {
            deviceId: r.deviceId,
            unitId: r.unitId,
            ts: r.ts,
            values: { ...r.values },
          });
        else if (r.ts >= cur.ts)
          pending.set(r.deviceId, {
            ...cur,
            ts: r.ts,
            values: { ...cur.values, ...(r.values as Record<string, number>) },
          });
      }
      timer ??= setTimeout(flush, flushMs);
    },
    publish(event: Exclude<LiveEvent, { type: 'readings' }>): void {
      const unitId = event.type === 'alert' ? event.alert.unitId : event.device.unitId;
      for (const s of subscribers) if (sees(s, unitId)) s.send(event);
    },
    close(): void {
      if (timer) clearTimeout(timer);
      subscribers.clear();
    },
  };
}

export type LiveHub = ReturnType<typeof createLiveHub>;
