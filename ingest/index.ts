export {
  createIngest,
  type Ingest,
  type IngestConfig,
  type IngestCounters,
} from './ingest-service.ts';
export { createQuarantineService, type QuarantineService } from './quarantine-service.ts';
export { parsePayload } from './payload-fns.ts';
export { reasonCodes, type Reason, type ReasonCode } from './ingest-errors.ts';
