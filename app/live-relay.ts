import type { Logger } from 'pino';
import { z } from 'zod';
import type { LiveEvent, LiveHub } from '../dashboards/live-hub.ts';
import { MAX_MESSAGE_BYTES, type ClusterBus } from './cluster-bus.ts';

/**
 * The live hub across nodes (ADR 0011): each flush's coalesced readings (the latest values per
 * device, not the raw batch), alerts and presence changes go to the other nodes over the cluster
 * bus, split into messages that fit a NOTIFY; what arrives is checked and handed to this node's
 * hub, and remote readings to `onRemoteReadings` (the alert leader evaluates them).
 */

const id = z.string().min(1).max(200);
const reading = z.object({
  deviceId: id,
  unitId: id,
  ts: z.iso.datetime({ offset: true }),
  values: z.record(z.string().max(100), z.number()),
});
const liveEvent = z.discriminatedUnion('type', [
  z.object({ type: z.literal('readings'), readings: z.array(reading).max(10_000) }),
  z.object({
    type: z.literal('alert'),
    alert: z.object({
      id: z.number(),
      unitId: id,
      deviceId: id,
      ruleId: id,
      title: z.string().max(1000),
      severity: z.string().max(50),
      status: z.string().max(50),
      value: z.number().nullable(),
    }),
  }),
  z.object({
    type: z.literal('device'),
    device: z.object({ id, unitId: id, online: z.boolean(), at: z.iso.datetime({ offset: true }) }),
  }),
]);

type Readings = Extract<LiveEvent, { type: 'readings' }>['readings'];

/** Splits a readings event so that each part, in its envelope, fits `maxBytes`. Pure. */
export function splitReadings(readings: Readings, maxBytes = MAX_MESSAGE_BYTES - 200): Readings[] {
  const parts: Readings[] = [];
  let part: Readings = [];
  let size = 0;
  for (const r of readings) {
    const bytes = Buffer.byteLength(JSON.stringify(r)) + 1;
    if (part.length > 0 && size + bytes > maxBytes) {
      parts.push(part);
      part = [];
      size = 0;
    }
    part.push(r);
    size += bytes;
  }
  if (part.length > 0) parts.push(part);
  return parts;
}

export function relayToBus(bus: ClusterBus, logger: Logger): (event: LiveEvent) => void {
  const send = (event: LiveEvent): void =>
    void bus
      .send('live', event)
      .catch((err: unknown) => logger.warn({ err }, 'live event not sent to the other nodes'));
  return (event) => {
    if (event.type !== 'readings') return send(event);
    for (const readings of splitReadings(event.readings)) send({ type: 'readings', readings });
  };
}

export function receiveFromBus(
  bus: ClusterBus,
  deps: {
    hub: Pick<LiveHub, 'received'>;
    logger: Logger;
    onRemoteReadings?: (readings: Readings) => void;
  },
): void {
  bus.on('live', (body) => {
    const parsed = liveEvent.safeParse(body);
    if (!parsed.success) {
      deps.logger.warn(
        { issues: parsed.error.issues.slice(0, 3) },
        'malformed live event from another node',
      );
      return;
    }
    const event: LiveEvent = parsed.data;
    deps.hub.received(event);
    if (event.type === 'readings') deps.onRemoteReadings?.(event.readings);
  });
}
