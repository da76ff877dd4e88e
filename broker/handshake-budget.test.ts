import fc from 'fast-check';
import net, { type AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../test/outage-fixture.ts';
import { createAdmission, HandshakeBudget } from './admission.ts';

describe('handshake budget (reconnect storms)', () => {
  it('lets as many sockets wait as the recent handshake rate clears within the target, within [floor, ceiling]', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 200 }),
        fc.integer({ min: 100, max: 10_000 }),
        fc.integer({ min: 1, max: 5_000 }),
        fc.array(fc.integer({ min: 0, max: 400 }), { maxLength: 300 }),
        (floor, targetMs, extra, gaps) => {
          const ceiling = floor + extra;
          const budget = new HandshakeBudget({
            targetMs,
            floor,
            ceiling,
            windowMs: 5000,
            buckets: 10,
          });
          let now = 1_000_000;
          const times: number[] = [];
          for (const gap of gaps) {
            now += gap;
            budget.completed(now);
            times.push(now);
          }
          const limit = budget.limit(now);
          expect(limit).toBeGreaterThanOrEqual(floor);
          expect(limit).toBeLessThanOrEqual(ceiling);
          // The rate counts the handshakes of the last window (to a bucket's width: 4.5 to 5 s).
          const within = (ms: number): number => times.filter((t) => t > now - ms).length;
          const rate = budget.rate(now);
          expect(rate * 5).toBeGreaterThanOrEqual(within(4500) - 1e-9);
          expect(rate * 5).toBeLessThanOrEqual(within(5000) + 1e-9);
          expect(limit).toBe(
            Math.min(ceiling, Math.max(floor, Math.ceil((rate * targetMs) / 1000))),
          );
          // Quiet for a whole window: back to the floor.
          expect(budget.limit(now + 5000 + 500)).toBe(floor);
        },
      ),
    );
  });
});

describe('admission with a handshake budget (a real listener)', () => {
  it('closes sockets beyond the budget on accept, before TLS; a completed handshake frees its place', async () => {
    const held: net.Socket[] = [];
    const admission = createAdmission({
      options: {
        connectTimeoutMs: 600_000,
        maxPendingPerAddress: 1000,
        maxPending: 1000,
        handshakeTargetMs: 10_000,
        handshakeFloor: 5,
        handshakeWindowMs: 3_600_000,
      },
      handOver: (s) => held.push(s),
    });
    await new Promise<void>((r) => admission.server.listen(0, '127.0.0.1', r));
    const port = (admission.server.address() as AddressInfo).port;
    const clients: { socket: net.Socket; closed: boolean }[] = [];
    const open = (n: number): Promise<void> =>
      Promise.all(
        Array.from({ length: n }, (_, i) => {
          const c = {
            socket: net.connect({
              port,
              host: '127.0.0.1',
              localAddress: `127.20.0.${((clients.length + i) % 250) + 1}`,
            }),
            closed: false,
          };
          clients.push(c);
          c.socket.on('close', () => (c.closed = true));
          c.socket.on('error', () => undefined);
          return new Promise<void>((r) => c.socket.once('connect', () => r()));
        }),
      ).then(() => undefined);
    try {
      await open(20);
      await waitFor(
        'the refused sockets closed',
        () => clients.filter((c) => c.closed).length === 15,
      );
      expect(admission.pending()).toBe(5);
      expect(admission.counters.refusedCapacity).toBe(15);
      // 5 handshakes complete within the window (an hour, so that no machine is too slow for it):
      // 5 per 3,600 s × 10 s is under the floor, so still 5 may wait; the budget follows the rate.
      for (const s of held.splice(0)) admission.connectReceived(s.remoteAddress, s.remotePort);
      const before = clients.length;
      await open(10);
      await open(10);
      await waitFor(
        'the refused sockets closed',
        () => clients.slice(before).filter((c) => c.closed).length === 15,
      );
      expect(admission.pending()).toBe(5);
      expect(admission.counters.refusedCapacity).toBe(30);
    } finally {
      for (const c of clients) c.socket.destroy();
      admission.destroyPending();
      await new Promise((r) => admission.server.close(r));
    }
  });
});
