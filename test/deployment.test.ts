import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { requireTool } from './tools.ts';

/** One service's block of `docker-compose config` (1.29 prints YAML only): its indented lines. */
const composeService =
  (out: string) =>
  (name: string): string =>
    new RegExp(`^  ${name}:\\n((?:    .*\\n|\\s*\\n)*)`, 'm').exec(out)?.[1] ?? '';

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

  it('compose publishes every port a device needs through HAProxy, checks every service’s health, and pins the TimescaleDB the tests use', () => {
    if (!requireTool('docker-compose')) return;
    const run = spawnSync('docker-compose', ['-f', 'compose.yaml', 'config'], { encoding: 'utf8' });
    expect(run.status).toBe(0);
    const service = composeService(run.stdout);
    // MQTT and firmware downloads (both mutual TLS), the API, the redirect (config/config.ts
    // defaults): published by HAProxy only, which spreads them over the nodes.
    const published = (name: string): number[] =>
      [...service(name).matchAll(/^\s+-? ?published: (\d+)$/gm)].map((m) => Number(m[1])).sort();
    expect(published('haproxy')).toEqual([8080, 8443, 8883, 8884]);
    for (const name of ['gateway-1', 'gateway-2', 'api', 'redis', 'timescaledb'])
      expect(published(name), name).toEqual([]);
    // Every service says when it is healthy; the Thamani nodes by their /readyz.
    for (const name of ['haproxy', 'redis', 'gateway-1', 'gateway-2', 'api', 'timescaledb'])
      expect(service(name), name).toMatch(/^ {4}healthcheck:\n/m);
    for (const name of ['gateway-1', 'gateway-2', 'api'])
      expect(service(name), name).toMatch(/healthcheck:\n(?: {6}.*\n)*.*\/readyz/);
    // The release the time-series path is tested against (ADR 0001), not an older one.
    const tested = /TimescaleDB (\d+\.\d+\.\d+)/.exec(
      readFileSync('docs/decisions/0001-readings-layout.md', 'utf8'),
    )![1]!;
    expect(service('timescaledb')).toContain(`image: timescale/timescaledb:${tested}-pg17\n`);
    const dockerfile = readFileSync('Dockerfile', 'utf8');
    for (const port of [8883, 8884, 8443, 8080])
      expect(dockerfile).toMatch(new RegExp(`^EXPOSE .*\\b${port}\\b`, 'm'));
  });

  it('compose runs two gateway nodes on Redis behind HAProxy and an API node apart, sharing one data volume', () => {
    if (!requireTool('docker-compose')) return;
    const run = spawnSync('docker-compose', ['-f', 'compose.yaml', 'config'], { encoding: 'utf8' });
    expect(run.status).toBe(0);
    const service = composeService(run.stdout);
    const role = (name: string): string | undefined =>
      /command:\n {4}- start\n {4}- --role\n {4}- (\w+)\n/.exec(service(name))?.[1];
    expect([role('gateway-1'), role('gateway-2'), role('api')]).toEqual([
      'gateway',
      'gateway',
      'api',
    ]);
    for (const name of ['gateway-1', 'gateway-2', 'api']) {
      const s = service(name);
      expect(s, name).toContain('REDIS_URL: redis://redis:6379');
      // The gateways believe PROXY headers from HAProxy's fixed address only.
      expect(s, name).toContain('MQTT_PROXY_PROTOCOL: "true"');
      expect(s, name).toMatch(/MQTT_TRUSTED_PROXIES: 172\.28\.0\.10\n/);
      // One CA, one ticket key, one audit key for every node.
      expect(s, name).toMatch(/- thamani-data:\/var\/lib\/thamani:rw\n/);
    }
    expect(service('haproxy')).toMatch(/ipv4_address: 172\.28\.0\.10\n/);
    expect(service('haproxy')).toMatch(/deploy\/haproxy\/haproxy\.cfg/);
    // The second node starts once the first has made the CA (never two CAs on one volume).
    expect(service('gateway-2')).toMatch(
      /depends_on:\n\s+gateway-1:\n\s+condition: service_healthy/,
    );
  });

  it('haproxy.cfg passes MQTT through with PROXY v2 to both gateways and checks every server’s /readyz', () => {
    const cfg = readFileSync('deploy/haproxy/haproxy.cfg', 'utf8');
    const backend = (name: string): string =>
      new RegExp(`^backend ${name}\\n((?: {4}.*\\n|\\s*\\n)*)`, 'm').exec(cfg)?.[1] ?? '';
    const servers = (name: string): string[] =>
      backend(name)
        .split('\n')
        .filter((l) => /^\s+server /.test(l));
    // TCP passthrough: mutual TLS ends at the gateway, never at HAProxy.
    expect(cfg).not.toMatch(/\bssl crt\b|\bcrt \//);
    expect(cfg).toMatch(/^\s+mode tcp$/m);
    expect(servers('gateways_mqtt').map((l) => l.trim().split(/\s+/)[2])).toEqual([
      'gateway-1:8883',
      'gateway-2:8883',
    ]);
    for (const l of servers('gateways_mqtt')) expect(l).toMatch(/\bsend-proxy-v2\b/);
    expect(servers('gateways_firmware').map((l) => l.trim().split(/\s+/)[2])).toEqual([
      'gateway-1:8884',
      'gateway-2:8884',
    ]);
    for (const name of ['gateways_mqtt', 'gateways_firmware', 'api_https']) {
      expect(backend(name), name).toMatch(/http-check send meth GET uri \/readyz/);
      for (const l of servers(name))
        expect(l, name).toMatch(/\bcheck port 8443 check-ssl\b|\bcheck check-ssl\b/);
    }
    for (const port of [8883, 8884, 8443, 8080])
      expect(cfg).toMatch(new RegExp(`bind :${port}\\n`));
    if (!requireTool('haproxy')) return;
    const check = spawnSync('haproxy', ['-c', '-f', 'deploy/haproxy/haproxy.cfg'], {
      encoding: 'utf8',
    });
    expect(check.stdout + check.stderr).toMatch(/Configuration file is valid/);
    expect(check.status).toBe(0);
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
