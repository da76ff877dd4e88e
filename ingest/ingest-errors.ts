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
