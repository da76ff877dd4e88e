/**
 * Seeded randomness so that a simulated fleet is reproducible: mulberry32 (a 32-bit generator,
 * public domain, Tommy Ettinger), enough for simulation noise and far cheaper than a library.
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A stable seed per device id, so each device has its own stream from one fleet seed. */
export function seedFor(fleetSeed: number, deviceId: string): number {
  let h = fleetSeed ^ 0x811c9dc5;
  for (let i = 0; i < deviceId.length; i++) h = Math.imul(h ^ deviceId.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Normal noise (Box–Muller) from a uniform generator. */
export function gaussian(rand: () => number, sd = 1): number {
  const u = Math.max(rand(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand()) * sd;
}
