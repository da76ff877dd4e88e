import type { RowIn } from '../ingest/batch-writer.ts';

/**
 * Live updates for the dashboards (Server-Sent Events). Stored readings are coalesced per device
 * and flushed every `flushMs` (one event per subscriber and flush, however fast devices report);
 * alert and presence events go out at once. Each subscriber sees only the units it may see.
 *
 * Across nodes (ADR 0011): with `relay`, every event made here (the coalesced readings of a flush,
 * an alert, a presence change) is also handed to it, which sends it to the other nodes sharing the
 * database (app/live-relay.ts); what they send arrives through `received` and goes to this node's
 * subscribers only. So a manager watching node A sees readings ingested by node B.
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

export function createLiveHub(
  opts: {
    flushMs?: number;
    /** Hands each local event to the other nodes; readings are gathered even with no local subscriber. */
    relay?: (event: LiveEvent) => void;
  } = {},
) {
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
    deliver(readings);
    if (readings.length > 0) opts.relay?.({ type: 'readings', readings });
  }

  function deliver(readings: Extract<LiveEvent, { type: 'readings' }>['readings']): void {
    for (const s of subscribers) {
      const own = readings.filter((r) => sees(s, r.unitId));
      if (own.length > 0) s.send({ type: 'readings', readings: own });
    }
  }

  function deliverOne(event: Exclude<LiveEvent, { type: 'readings' }>): void {
    const unitId = event.type === 'alert' ? event.alert.unitId : event.device.unitId;
    for (const s of subscribers) if (sees(s, unitId)) s.send(event);
  }

  return {
    subscribe(s: Subscriber): () => void {
      subscribers.add(s);
      return () => void subscribers.delete(s);
    },
    subscribers: (): number => subscribers.size,
    /** Called with every committed batch of stored readings; cheap when nobody watches. */
    stored(rows: readonly RowIn[]): void {
      if (subscribers.size === 0 && !opts.relay) return;
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
      deliverOne(event);
      opts.relay?.(event);
    },
    /** An event another node made (app/live-relay.ts): for this node's subscribers only. */
    received(event: LiveEvent): void {
      if (event.type === 'readings') deliver(event.readings);
      else deliverOne(event);
    },
    close(): void {
      if (timer) clearTimeout(timer);
      subscribers.clear();
    },
  };
}

export type LiveHub = ReturnType<typeof createLiveHub>;
