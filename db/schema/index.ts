export * from './core.ts';
export * from './audit.ts';
export * from './pki.ts';
export * from './ingest.ts';
export * from './auth.ts';
export * from './alerts.ts';
export * from './firmware.ts';
export * from './mrv.ts';
