import { Command, CommanderError } from 'commander';
import { ConfigError, loadConfig, type Config } from '../config/index.ts';
import { registerCoreCommands } from './core-commands.ts';
import { registerUserCommands } from './user-commands.ts';
import { registerAuditCommands } from './audit-commands.ts';

/**
 * `thamani`: one binary for operators and technicians. Each verb lives in a register* module
 * next to the feature it drives; this file only wires them and turns errors into exit codes.
 */

export class CliError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
  }
}

/** Config is read lazily so that `--help` works whatever the environment holds. */
export function lazyConfig(): () => Config {
  let config: Config | undefined;
  return () => (config ??= loadConfig());
}

export function buildCli(): Command {
  const program = new Command('thamani')
    .description('Thamani IoT: mTLS MQTT gateway and telemetry backend for biodigesters and collection points')
    .showHelpAfterError()
    .exitOverride();
  const config = lazyConfig();
  registerCoreCommands(program, config);
  registerUserCommands(program, config);
  registerAuditCommands(program, config);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildCli().parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode;
      return;
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`thamani: ${err.message}\n`);
      process.exitCode = 78; // EX_CONFIG
      return;
    }
    if (err instanceof CliError) {
      process.stderr.write(`thamani: ${err.message}\n`);
      process.exitCode = err.exitCode;
      return;
    }
    process.stderr.write(`thamani: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
