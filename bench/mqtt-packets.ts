/** MQTT 3.1.1 packets the bench's load generators write by hand (cheap next to the broker they measure). */
import { encodeRemainingLength } from '../broker/packet-guard.ts';

export function connectPacket(clientId: string): Buffer {
  const id = Buffer.from(clientId);
  const variable = Buffer.concat([
    Buffer.from([0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0x02, 0, 60, id.length >> 8, id.length & 0xff]),
    id,
  ]);
  return Buffer.concat([Buffer.from([0x10]), encodeRemainingLength(variable.length), variable]);
}

export function publishPacket(topic: Buffer, messageId: number, payload: Buffer): Buffer {
  const len = 2 + topic.length + 2 + payload.length;
  return Buffer.concat([
    Buffer.from([0x32]),
    encodeRemainingLength(len),
    Buffer.from([topic.length >> 8, topic.length & 0xff]),
    topic,
    Buffer.from([messageId >> 8, messageId & 0xff]),
    payload,
  ]);
}

export function reading(kind: 'biodigester' | 'collection_point', seq: number, ts: number): string {
  const v = 20 + (seq % 100) / 10;
  const readings =
    kind === 'biodigester'
      ? `{"temperature_c":${v},"ph":7.1,"methane_pct":58.5,"battery_v":3.9}`
      : `{"fill_level_pct":${v},"weight_kg":${v * 3},"battery_v":3.9}`;
  return `{"seq":${seq},"ts":"${new Date(ts).toISOString()}","readings":${readings}}`;
}
