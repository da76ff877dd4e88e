import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_MESSAGE_BYTES } from './cluster-bus.ts';
import { splitReadings } from './live-relay.ts';

/**
 * The live hub's readings cross nodes as NOTIFY payloads (ADR 0011), which PostgreSQL caps at
 * 8000 bytes: however many readings a flush holds, each part with its envelope must fit, and the
 * parts together must be the flush, in order.
 */
const reading = fc.record({
  deviceId: fc.string({ minLength: 1, maxLength: 64 }),
  unitId: fc.uuid(),
  ts: fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
  values: fc.dictionary(
    fc.string({ minLength: 1, maxLength: 24 }),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    { maxKeys: 12 },
  ),
});

describe('splitReadings', () => {
  it('splits any flush into parts that fit a NOTIFY with their envelope, losing and reordering nothing', () => {
    fc.assert(
      fc.property(fc.array(reading, { maxLength: 400, size: 'max' }), (readings) => {
        const parts = splitReadings(readings);
        expect(parts.flat()).toEqual(readings);
        for (const part of parts) {
          expect(part.length).toBeGreaterThan(0);
          const envelope = JSON.stringify({
            n: '00000000-0000-0000-0000-000000000000',
            k: 'live',
            b: { type: 'readings', readings: part },
          });
          expect(Buffer.byteLength(envelope)).toBeLessThanOrEqual(MAX_MESSAGE_BYTES);
        }
      }),
      { numRuns: 100, endOnFailure: true },
    );
  });
});
