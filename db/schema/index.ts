export * from './core.ts';
export * from './audit.ts';
