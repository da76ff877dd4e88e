/** Why a reading was quarantined: one code per problem, each tied to a field (docs/device-contract.md). */
export const reasonCodes = [
  'MALFORMED_JSON',
  'SCHEMA',
  'UNKNOWN_METRIC',
  'WRONG_KIND',
  'WRONG_TYPE',
  'OUT_OF_RANGE',
  'TS_FUTURE',
  'TS_TOO_OLD',
  'BATCH_TOO_LARGE',
  'PAYLOAD_TOO_LARGE',
  'SEQ_REGRESSION',
  // The payload is JSON only in part: a member name twice in one object (which one did the device
  // mean?) or nesting deeper than the contract ever needs (broker/device-json.ts).
  'DUPLICATE_KEY',
  'NESTING_TOO_DEEP',
  // A number JavaScript cannot hold as sent: an exponent beyond a 64-bit float (1e400 parses to
  // Infinity) anywhere, or a seq beyond 2^53-1 (it would be stored as a different number).
  'NUMBER_UNREPRESENTABLE',
  // A time no date can hold: SenML bt + t beyond ±8.64e12 s (±275,760 years, ECMA-262 §21.4.1.1).
  'TS_UNREPRESENTABLE',
  // The gateway failed on this message (a bug, not the device's fault): kept whole, for a
  // technician to replay once fixed; the device is told and may drop it.
  'INTERNAL_REJECT',
  'SEQ_JUMP',
  'TS_CONFLICT',
] as const;
export type ReasonCode = (typeof reasonCodes)[number];

export interface Reason {
  /** JSON path of the offending field, e.g. `batch[3].readings.ph`; '' for the whole payload. */
  field: string;
  code: ReasonCode;
  message: string;
}
