export * from './core.ts';
export * from './audit.ts';
export * from './auth.ts';
