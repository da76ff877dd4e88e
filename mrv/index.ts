export { createMrvService, monthPeriod, type MrvService } from './mrv-service.ts';
export { createMrvRepo, type MrvRepo } from './mrv-repo.ts';
export {
  loadOrCreateMrvSigner,
  openMrvSigner,
  mrvSignerFromKey,
  MRV_PUBLIC_KEY_FILE,
  type MrvSigner,
} from './mrv-signer.ts';
export { MrvError } from './mrv-errors.ts';
