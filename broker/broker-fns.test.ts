import { describe, expect, it } from 'vitest';
import { encodeRemainingLength, FixedHeaderReader } from './packet-guard.ts';
import { TokenBucket } from './rate-limiter.ts';
import { authorizeDevicePublish, authorizeDeviceSubscribe, mayForward } from './topic-policy.ts';

function packet(bodyLength: number): Buffer {
  return Buffer.concat([
    Buffer.from([0x32, ...encodeRemainingLength(bodyLength)]),
    Buffer.alloc(bodyLength, 1),
  ]);
}

describe('FixedHeaderReader', () => {
  it('lets packets up to the limit through, across arbitrary chunk boundaries', () => {
    const stream = Buffer.concat([packet(10), packet(200), packet(16_000), packet(0)]);
    for (const size of [1, 2, 3, 7, 64, 4096]) {
      const reader = new FixedHeaderReader(16_004);
      for (let i = 0; i < stream.length; i += size) {
        expect(reader.feed(stream.subarray(i, i + size))).toEqual({ ok: true });
      }
    }
  });

  it('refuses a packet whose declared size is over the limit from its header alone', () => {
    const reader = new FixedHeaderReader(256 * 1024);
    // A 20 MB publish: only the 5 header bytes are needed to refuse it.
    const header = Buffer.from([0x32, ...encodeRemainingLength(20 * 1024 * 1024)]);
    expect(reader.feed(header)).toEqual({
      ok: false,
      reason: 'packet_too_large',
      declared: 1 + 4 + 20 * 1024 * 1024,
    });
  });

  it('refuses a Remaining Length longer than four bytes [MQTT-2.2.3]', () => {
    const reader = new FixedHeaderReader(1e9);
    expect(reader.feed(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]))).toEqual({
      ok: false,
      reason: 'malformed_length',
    });
  });

  it('checks the packet after a large one that was allowed', () => {
    const reader = new FixedHeaderReader(1000);
    expect(reader.feed(packet(990))).toEqual({ ok: true });
    expect(reader.feed(packet(5000).subarray(0, 10))).toMatchObject({
      ok: false,
      reason: 'packet_too_large',
    });
  });
});

describe('TokenBucket', () => {
  it('allows a burst, then paces to the rate, then refills', () => {
    let now = 0;
    const bucket = new TokenBucket({ ratePerSecond: 10, burst: 3, now: () => now });
    expect([bucket.take(), bucket.take(), bucket.take()]).toEqual([0, 0, 0]);
    expect(bucket.take()).toBeCloseTo(100);
    expect(bucket.take()).toBeCloseTo(200);
    now = 10_000;
    expect(bucket.take()).toBe(0);
  });

  it('refund gives a reserved token back', () => {
    const now = 0;
    const bucket = new TokenBucket({ ratePerSecond: 1, burst: 1, now: () => now });
    expect(bucket.take()).toBe(0);
    expect(bucket.take()).toBeCloseTo(1000);
    bucket.refund();
    expect(bucket.take()).toBeCloseTo(1000);
  });
});

describe('topic policy', () => {
  const own = (topic: string, extra: Partial<{ retain: boolean; qos: number }> = {}) =>
    authorizeDevicePublish('bd-1234', { topic, retain: false, qos: 1, ...extra });

  it('lets a device publish to its own upstream topics', () => {
    expect(own('devices/bd-1234/telemetry')).toEqual({ ok: true, suffix: 'telemetry' });
    expect(own('devices/bd-1234/cert/csr')).toEqual({ ok: true, suffix: 'cert/csr' });
  });

  it.each([
    ['devices/bd-9999/telemetry', 'not_own_topic'],
    ['devices/bd-1234x/telemetry', 'not_own_topic'],
    ['devices/bd-1234/errors', 'unknown_suffix'],
    ['devices/bd-1234/telemetry/extra', 'unknown_suffix'],
    ['$SYS/broker/heartbeat', 'system_topic'],
    ['devices/bd-1234/#', 'wildcard'],
  ])('refuses publishing to %s (%s)', (topic, reason) => {
    expect(own(topic)).toEqual({ ok: false, reason });
  });

  it('refuses retained and QoS 2 publishes', () => {
    expect(own('devices/bd-1234/telemetry', { retain: true })).toEqual({
      ok: false,
      reason: 'retain_not_allowed',
    });
    expect(own('devices/bd-1234/telemetry', { qos: 2 })).toEqual({
      ok: false,
      reason: 'qos_not_allowed',
    });
  });

  it.each([
    ['#', 'wildcard'],
    ['devices/+/errors', 'wildcard'],
    ['devices/bd-9999/#', 'wildcard'],
    ['devices/bd-9999/errors', 'not_own_topic'],
    ['$SYS/#', 'system_topic'],
    ['devices/bd-1234/telemetry', 'unknown_suffix'],
  ])('refuses subscribing to %s (%s)', (topic, reason) => {
    expect(authorizeDeviceSubscribe('bd-1234', topic)).toEqual({ ok: false, reason });
  });

  it('lets a device subscribe to its own downstream topics and forwards only those', () => {
    expect(authorizeDeviceSubscribe('bd-1234', 'devices/bd-1234/cert/issued')).toEqual({
      ok: true,
      suffix: 'cert/issued',
    });
    expect(mayForward('bd-1234', 'devices/bd-1234/errors')).toBe(true);
    expect(mayForward('bd-1234', 'devices/bd-9999/errors')).toBe(false);
  });
});
