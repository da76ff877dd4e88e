export { loadConfig, ConfigError, configKeys } from './config.ts';
export type { Config, Env } from './config.ts';
