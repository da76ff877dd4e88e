import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { requireTool } from './tools.ts';

describe('deployment files', () => {
  it('compose.yaml is accepted by docker-compose config and runs TimescaleDB with a volume and a healthcheck', () => {
    if (!requireTool('docker-compose')) return;
    const run = spawnSync('docker-compose', ['-f', 'compose.yaml', 'config'], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/image: timescale\/timescaledb:/);
    expect(run.stdout).toMatch(/healthcheck:/);
    expect(run.stdout).toMatch(/pgdata:\/var\/lib\/postgresql\/data/);
    // Secrets come from files at run time, never from the image or plain environment values.
    expect(run.stdout).not.toMatch(/POSTGRES_PASSWORD:/);
    expect(run.stdout).toMatch(/DATABASE_URL_FILE: \/run\/secrets\/database_url/);
    // Everything production requires (config/config.ts) arrives as a secret file.
    for (const key of ['PKI_PASSPHRASE', 'SESSION_SECRET', 'APP_DB_PASSWORD', 'INGEST_DB_PASSWORD'])
      expect(run.stdout).toContain(`${key}_FILE: /run/secrets/`);
    // Grafana is opt-in (profile) and provisioned from the repository's files.
    expect(run.stdout).toMatch(/grafana\/provisioning:\/etc\/grafana\/provisioning:ro/);
  });

  it('compose publishes every port a device needs, checks the gateway’s readiness, and pins the TimescaleDB the tests use', () => {
    if (!requireTool('docker-compose')) return;
    const run = spawnSync('docker-compose', ['-f', 'compose.yaml', 'config'], { encoding: 'utf8' });
    expect(run.status).toBe(0);
    // The normalised output (docker-compose 1.29 prints YAML only): one block per service.
    const service = (name: string): string =>
      new RegExp(`^  ${name}:\\n((?:    .*\\n|\\s*\\n)*)`, 'm').exec(run.stdout)?.[1] ?? '';
    const gateway = service('gateway');
    // MQTT and firmware downloads (both mutual TLS), the API, the redirect (config/config.ts defaults).
    expect([...gateway.matchAll(/^\s+target: (\d+)$/gm)].map((m) => Number(m[1])).sort()).toEqual([
      8080, 8443, 8883, 8884,
    ]);
    expect(gateway).toMatch(/healthcheck:\n(?: {6}.*\n)*.*\/readyz/);
    // The release the time-series path is tested against (ADR 0001), not an older one.
    const tested = /TimescaleDB (\d+\.\d+\.\d+)/.exec(
      readFileSync('docs/decisions/0001-readings-layout.md', 'utf8'),
    )![1]!;
    expect(service('timescaledb')).toContain(`image: timescale/timescaledb:${tested}-pg17\n`);
    const dockerfile = readFileSync('Dockerfile', 'utf8');
    for (const port of [8883, 8884, 8443, 8080])
      expect(dockerfile).toMatch(new RegExp(`^EXPOSE .*\\b${port}\\b`, 'm'));
  });

  it('.dockerignore keeps secrets and local configuration out of the build context', () => {
    const ignored = readFileSync('.dockerignore', 'utf8')
      .split('\n')
      .map((l) => l.trim());
    for (const entry of ['secrets', '.env', 'data', 'node_modules', '.git'])
      expect(ignored).toContain(entry);
  });

  it('the Dockerfile is multi-stage and runs as a non-root user', () => {
    const dockerfile = readFileSync('Dockerfile', 'utf8');
    expect(dockerfile.match(/^FROM /gm)?.length).toBeGreaterThanOrEqual(2);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).not.toMatch(/PASSWORD|SECRET|TOKEN/);
    // The dashboards' static files ship next to the compiled code that serves them.
    expect(dockerfile).toMatch(/cp -r dashboards\/public dist\/dashboards\//);
  });

  it('runs a supported Node LTS, and package.json engines is no wider than its dependencies allow', () => {
    const version = (v: string): number[] => v.split('.').map(Number).concat(0, 0).slice(0, 3);
    const atLeast = (a: number[], b: number[]): boolean =>
      (a[0]! - b[0]! || a[1]! - b[1]! || a[2]! - b[2]!) >= 0;
    const engines = (
      JSON.parse(readFileSync('package.json', 'utf8')) as { engines: { node: string } }
    ).engines.node;
    const floor = /^>=\s*(\d+(?:\.\d+){0,2})$/.exec(engines)?.[1];
    expect(floor, `engines.node is a single lower bound: ${engines}`).toBeDefined();
    // Node 20 reached its end of life in April 2026; 22 and 24 are the LTS lines after it.
    expect(version(floor!)[0]).toBeGreaterThanOrEqual(22);
    // Every dependency that states a plain lower bound (cookie, undici, testcontainers...) accepts ours.
    const lock = JSON.parse(readFileSync('package-lock.json', 'utf8')) as {
      packages: Record<string, { engines?: { node?: string } }>;
    };
    for (const [name, p] of Object.entries(lock.packages)) {
      const theirs = /^>=\s*(\d+(?:\.\d+){0,2})$/.exec(p.engines?.node?.trim() ?? '')?.[1];
      if (theirs)
        expect(
          atLeast(version(floor!), version(theirs)),
          `${name} needs node ${p.engines!.node}, engines says ${engines}`,
        ).toBe(true);
    }
    // The image: one Node image for both stages, an even (LTS) major within engines.
    const dockerfile = readFileSync('Dockerfile', 'utf8');
    const image = /^ARG NODE_IMAGE=node:(\d+)-bookworm-slim$/m.exec(dockerfile);
    expect(image).not.toBeNull();
    expect(
      dockerfile.match(/^FROM .*/gm)!.every((line) => line.startsWith('FROM ${NODE_IMAGE} AS ')),
    ).toBe(true);
    const major = Number(image![1]);
    expect(major % 2).toBe(0);
    expect(atLeast([major, 99, 99], version(floor!))).toBe(true);
  });
});
