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
    for (const key of ['PKI_PASSPHRASE', 'SESSION_SECRET', 'APP_DB_PASSWORD', 'INGEST_DB_PASSWORD']) expect(run.stdout).toContain(`${key}_FILE: /run/secrets/`);
    // Grafana is opt-in (profile) and provisioned from the repository's files.
    expect(run.stdout).toMatch(/grafana\/provisioning:\/etc\/grafana\/provisioning:ro/);
  });

  it('the Dockerfile is multi-stage and runs as a non-root user', () => {
    const dockerfile = readFileSync('Dockerfile', 'utf8');
    expect(dockerfile.match(/^FROM /gm)?.length).toBeGreaterThanOrEqual(2);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).not.toMatch(/PASSWORD|SECRET|TOKEN/);
    // The dashboards' static files ship next to the compiled code that serves them.
    expect(dockerfile).toMatch(/cp -r dashboards\/public dist\/dashboards\//);
  });
});
