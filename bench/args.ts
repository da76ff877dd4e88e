/** `--name value` from the command line as a number, or the fallback; a non-number is an error. */
export function numberArg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const value = Number(process.argv[i + 1]);
  if (!Number.isFinite(value))
    throw new Error(`--${name} needs a number (got ${process.argv[i + 1] ?? 'nothing'})`);
  return value;
}

/** `--name value` from the command line as a string, or the fallback. */
export function stringArg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const value = process.argv[i + 1];
  if (value === undefined || value.startsWith('--')) throw new Error(`--${name} needs a value`);
  return value;
}
