import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * .ci/run's accounting: the closing line CI reads and the exit status, for a suite that passes,
 * fails, crashes or never loads. The script runs for real (bash, node) in a scratch copy of the
 * tree; `npm` on its PATH is a stand-in that plays one outcome, because the outcome of npm is
 * what is varied here, and dpkg-query says every package is there so nothing gets installed.
 */

type Outcome = { exit: number; report?: object };

type FileResult = { status: string; message?: string; tests: string[] };

function report(o: {
  passed: number;
  failed?: number;
  skipped?: number;
  files?: FileResult[];
}): object {
  const files: FileResult[] = o.files ?? [
    {
      status: o.failed ? 'failed' : 'passed',
      tests: [...Array(o.passed).fill('passed'), ...Array(o.failed ?? 0).fill('failed')],
    },
  ];
  return {
    numPassedTests: o.passed,
    numFailedTests: o.failed ?? 0,
    numPendingTests: o.skipped ?? 0,
    numTodoTests: 0,
    success: !o.failed && files.every((f) => f.status === 'passed'),
    testResults: files.map((f, i) => ({
      name: `/repo/f${i}.test.ts`,
      status: f.status,
      message: f.message ?? '',
      assertionResults: f.tests.map((status) => ({ status })),
    })),
  };
}

interface Steps {
  typecheck?: number;
  lint?: number;
  test: Outcome;
  staleReport?: object;
  /** Packages dpkg-query reports as not installed, and the user id .ci/run sees. */
  missing?: string[];
  uid?: number;
}

function runCi(steps: Steps): {
  status: number | null;
  lastLine: string;
  stderr: string;
  installs: string[];
} {
  const root = mkdtempSync(path.join(os.tmpdir(), 'thamani-ci-run-'));
  mkdirSync(path.join(root, '.ci'));
  copyFileSync(path.join(import.meta.dirname, '..', '.ci', 'run'), path.join(root, '.ci', 'run'));
  if (steps.staleReport) {
    mkdirSync(path.join(root, 'test-output'));
    writeFileSync(path.join(root, 'test-output', 'vitest.json'), JSON.stringify(steps.staleReport));
  }
  const bin = path.join(root, 'fake-bin');
  mkdirSync(bin);
  const script = (name: string, body: string): void => {
    writeFileSync(path.join(bin, name), `#!/usr/bin/env bash\n${body}\n`);
    chmodSync(path.join(bin, name), 0o755);
  };
  const missing = (steps.missing ?? []).join(' ');
  script(
    'dpkg-query',
    `case " ${missing} " in *" \${@: -1} "*) exit 1 ;; esac; printf 'install ok installed'`,
  );
  // Installs are logged, not made: who ran apt-get (root or through sudo) and with what.
  const log = path.join(root, 'installs.log');
  script('id', `[ "$1" = -u ] && echo ${steps.uid ?? 0} || exec /usr/bin/id "$@"`);
  script('sudo', `echo "sudo $*" >> ${log}; SUDO=1 "$@"`);
  script('apt-get', `[ -n "\${SUDO:-}" ] || echo "apt-get $*" >> ${log}`);
  writeFileSync(path.join(root, 'report.json'), JSON.stringify(steps.test.report ?? null));
  script(
    'npm',
    [
      'case "$1 $2" in',
      '  "ci "*) exit 0 ;;',
      `  "run typecheck") exit ${steps.typecheck ?? 0} ;;`,
      `  "run lint") exit ${steps.lint ?? 0} ;;`,
      '  "test "*)',
      '    for a in "$@"; do case "$a" in --outputFile.json=*) out="${a#--outputFile.json=}" ;; esac; done',
      steps.test.report
        ? '    mkdir -p "$(dirname "$out")" && cp report.json "$out"'
        : '    echo "vitest: worker crashed" >&2',
      `    exit ${steps.test.exit} ;;`,
      'esac',
      'exit 99',
    ].join('\n'),
  );
  const r = spawnSync('bash', [path.join(root, '.ci', 'run')], {
    encoding: 'utf8',
    env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
    timeout: 60_000,
  });
  const lines = r.stdout.trim().split('\n');
  const installs = existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : [];
  return { status: r.status, lastLine: lines[lines.length - 1] ?? '', stderr: r.stderr, installs };
}

describe('.ci/run', () => {
  it('ends green with the counts when everything passes', () => {
    const r = runCi({ test: { exit: 0, report: report({ passed: 7, skipped: 1 }) } });
    expect(r.lastLine).toBe('7 passed, 0 failed, 1 skipped');
    expect(r.status).toBe(0);
  });

  it('prints the closing line and fails when a test failed', () => {
    const r = runCi({ test: { exit: 1, report: report({ passed: 214, failed: 1 }) } });
    expect(r.lastLine).toBe('214 passed, 1 failed, 0 skipped');
    expect(r.status).not.toBe(0);
  });

  it('counts a file that failed before any test ran', () => {
    const files = [
      { status: 'passed', tests: ['passed', 'passed'] },
      { status: 'failed', message: 'Error: Cannot find module ./gone.ts', tests: [] },
    ];
    const r = runCi({ test: { exit: 1, report: report({ passed: 2, files }) } });
    expect(r.lastLine).toBe('2 passed, 1 failed, 0 skipped');
    expect(r.stderr).toContain('Cannot find module');
    expect(r.status).not.toBe(0);
  });

  it('is not green when vitest crashed and left no report, even with an old green one lying there', () => {
    const r = runCi({ test: { exit: 1 }, staleReport: report({ passed: 300 }) });
    expect(r.lastLine).toBe('0 passed, 1 failed, 0 skipped');
    expect(r.stderr).toMatch(/no test report/);
    expect(r.status).not.toBe(0);
  });

  it('is not green when vitest exited non-zero with a report that counts no failure', () => {
    const r = runCi({ test: { exit: 1, report: report({ passed: 5 }) } });
    expect(r.lastLine).toBe('5 passed, 1 failed, 0 skipped');
    expect(r.status).not.toBe(0);
  });

  it('still runs the suite and prints the line when typecheck or lint fail, and fails', () => {
    const r = runCi({ typecheck: 2, lint: 1, test: { exit: 0, report: report({ passed: 9 }) } });
    expect(r.lastLine).toBe('9 passed, 0 failed, 0 skipped');
    expect(r.stderr).toMatch(/failed: typecheck \(exit 2\) lint \(exit 1\)/);
    expect(r.status).not.toBe(0);
  });

  it('installs what is missing, redis-server and haproxy among them, as root or through sudo', () => {
    const green = { exit: 0, report: report({ passed: 1 }) };
    expect(runCi({ test: green }).installs).toEqual([]);
    const asRoot = runCi({ test: green, missing: ['redis-server', 'haproxy'], uid: 0 });
    expect(asRoot.installs).toEqual([
      'apt-get update -qq',
      'apt-get install -y -qq --no-install-recommends redis-server haproxy',
    ]);
    const asUser = runCi({ test: green, missing: ['haproxy', 'jq'], uid: 1000 });
    expect(asUser.installs).toEqual([
      'sudo apt-get update -qq',
      'sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends jq haproxy',
    ]);
    expect(asUser.lastLine).toBe('1 passed, 0 failed, 0 skipped');
  });
});
