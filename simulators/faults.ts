/** The faults a simulated fleet can inject (`thamani simulate --faults`); a module of its own so the CLI lists them without loading the fleet. */
export const faultNames = [
  'malformed',
  'out-of-range',
  'clock-skew',
  'duplicate',
  'cross-topic',
  'oversized',
  'revoke',
  'storm',
] as const;
export type Fault = (typeof faultNames)[number];
