import { runCommandLine } from '../cli/main.ts';

export interface CliResult {
  /** The status the process would exit with. */
  code: number;
  stdout: string;
  stderr: string;
}

type Write = typeof process.stdout.write;

let queue: Promise<unknown> = Promise.resolve();

/**
 * `thamani <args>` in this process: the same commander program, argv parsing, error handling and
 * exit status as bin/thamani.js, without starting Node and transpiling the tree again for every
 * call (seconds each on a loaded machine). For tests whose subject is the command, not the
 * process boundary; cli/cli.test.ts keeps real processes. The environment (read when the call
 * starts, so it may name a database made in beforeAll) is the command's for the duration of the
 * call, and what it writes to stdout and stderr is captured. Calls run one at a time, since both
 * are process-wide.
 */
export function cliRunner(
  env: () => Record<string, string>,
): (...args: string[]) => Promise<CliResult> {
  return (...args) => {
    const run = queue.then(() => runCaptured(env(), args));
    queue = run.catch(() => undefined);
    return run;
  };
}

async function runCaptured(env: Record<string, string>, args: string[]): Promise<CliResult> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  const savedExitCode = process.exitCode;
  // Put back exactly what was there (an own property or the stream's prototype method).
  const stdoutWrite: unknown = Reflect.get(process.stdout, 'write');
  const stderrWrite: unknown = Reflect.get(process.stderr, 'write');
  let stdout = '';
  let stderr = '';
  const capture =
    (append: (s: string) => void): Write =>
    (
      chunk: Uint8Array | string,
      encodingOrCb?: BufferEncoding | ((err?: Error | null) => void),
      cb?: (err?: Error | null) => void,
    ): boolean => {
      append(
        typeof chunk === 'string'
          ? chunk
          : Buffer.from(chunk).toString(typeof encodingOrCb === 'string' ? encodingOrCb : 'utf8'),
      );
      const done = typeof encodingOrCb === 'function' ? encodingOrCb : cb;
      if (done) queueMicrotask(() => done(null));
      return true;
    };
  Object.assign(process.env, env);
  process.exitCode = undefined;
  process.stdout.write = capture((s) => (stdout += s));
  process.stderr.write = capture((s) => (stderr += s));
  try {
    const status = await runCommandLine([process.execPath, 'thamani', ...args]);
    const code = status !== 0 ? status : Number(process.exitCode ?? 0);
    return { code, stdout, stderr };
  } finally {
    Reflect.set(process.stdout, 'write', stdoutWrite);
    Reflect.set(process.stderr, 'write', stderrWrite);
    process.exitCode = savedExitCode;
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}
