import { Command, CommanderError } from 'commander';
import type * as ConfigModuleExports from '../config/index.ts';
import type { Config } from '../config/index.ts';
import { registerCoreCommands } from './core-commands.ts';
import { CliError } from './errors.ts';
import { registerDeviceCommands } from './device-commands.ts';
import { registerDeviceConfigCommands } from '../device-config/config-commands.ts';
import { registerPkiCommands } from '../provisioning/pki-commands.ts';
import { registerQuarantineCommands } from '../ingest/quarantine-commands.ts';
import { registerBrokerCommands } from '../broker/broker-commands.ts';
import { registerSimulateCommands } from '../simulators/simulate-commands.ts';
import { registerUserCommands } from './user-commands.ts';
import { registerAuditCommands } from './audit-commands.ts';
import { registerFirmwareCommands } from '../firmware/firmware-commands.ts';
import { registerMrvCommands } from '../mrv/mrv-commands.ts';

/**
 * `thamani`: one binary for operators and technicians. Each verb lives in a register* module
 * next to the feature it drives; this file only wires them and turns errors into exit codes.
 * A register* module declares its commands with light imports only and loads what a command
 * needs (database, PKI, services) when that command runs: `thamani --help` or a mistyped
 * option loads none of it (BENCHMARKS.md, "CLI start-up").
 */

type ConfigModule = typeof ConfigModuleExports;
let configModule: ConfigModule | undefined;

/**
 * The config, read once when a command first asks for it (so that `--help` works whatever the
 * environment holds); its module is loaded before any command's action runs.
 */
function lazyConfig(): () => Config {
  let config: Config | undefined;
  return () => {
    if (!configModule) throw new Error('config read before the command ran');
    return (config ??= configModule.loadConfig());
  };
}

export function buildCli(): Command {
  const program = new Command('thamani')
    .description(
      'Thamani IoT: mTLS MQTT gateway and telemetry backend for biodigesters and collection points',
    )
    .showHelpAfterError()
    .exitOverride()
    .hook('preAction', async () => {
      configModule ??= await import('../config/index.ts');
    });
  const config = lazyConfig();
  registerCoreCommands(program, config);
  registerBrokerCommands(program, config);
  registerDeviceCommands(program, config);
  registerDeviceConfigCommands(program, config);
  registerPkiCommands(program, config);
  registerQuarantineCommands(program, config);
  registerUserCommands(program, config);
  registerAuditCommands(program, config);
  registerFirmwareCommands(program, config);
  registerMrvCommands(program, config);
  registerSimulateCommands(program, config);
  return program;
}

/**
 * One command line, start to end: runs it and returns the status a process would exit with,
 * having written any error to stderr. main() is this plus the process; tests that are not about
 * the process boundary call it in-process (test/cli-runner.ts).
 */
export async function runCommandLine(argv: string[]): Promise<number> {
  try {
    await buildCli().parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    if (configModule && err instanceof configModule.ConfigError) {
      process.stderr.write(`thamani: ${err.message}\n`);
      return 78; // EX_CONFIG
    }
    if (err instanceof CliError) {
      process.stderr.write(`thamani: ${err.message}\n`);
      return err.exitCode;
    }
    const code = (err as { code?: unknown }).code;
    process.stderr.write(
      `thamani: ${err instanceof Error ? err.message : String(err)}${typeof code === 'string' && /^[A-Z_]+$/.test(code) ? ` (${code})` : ''}\n`,
    );
    return 1;
  }
}

export async function main(argv: string[]): Promise<void> {
  // `thamani … | head` closes the pipe early: that is not an error of ours.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  });
  const status = await runCommandLine(argv);
  // A command may have set its own status (simulate: records missing) without throwing.
  if (status !== 0) process.exitCode = status;
}
