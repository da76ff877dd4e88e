export { loadConfig, ConfigError, configKeys, nodeRoles } from './config.ts';
export type { Config, Env, NodeRole } from './config.ts';
