import { spawnSync } from 'node:child_process';

/**
 * Whether an external tool a test needs is on PATH. Outside CI a missing tool skips that test's
 * body; with CI=true it throws, so the run fails instead of silently proving less.
 */
export function requireTool(name: string): boolean {
  const found = spawnSync('sh', ['-c', `command -v ${name}`]).status === 0;
  if (!found && process.env.CI === 'true')
    throw new Error(`${name} is required in CI but is not installed`);
  return found;
}
