import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.ts';

describe('security configuration', () => {
  it('defaults sessions to 30 min idle and 12 h absolute', () => {
    const c = loadConfig({});
    expect(c.auth).toMatchObject({
      sessionIdleMinutes: 30,
      sessionMaxHours: 12,
      sessionSecret: undefined,
    });
  });

  it('requires the session secret, the API and ingest database passwords and the CA passphrase in production, and never echoes them', () => {
    expect(() => loadConfig({ THAMANI_ENV: 'production' })).toThrow(ConfigError);
    let problems = '';
    try {
      loadConfig({ THAMANI_ENV: 'production', SESSION_SECRET: 'short-secret' });
    } catch (err) {
      problems = (err as ConfigError).problems.join('\n');
    }
    expect(problems).toMatch(/SESSION_SECRET: must be at least 32/);
    expect(problems).not.toContain('short-secret');
    expect(() =>
      loadConfig({
        THAMANI_ENV: 'production',
        SESSION_SECRET: 's'.repeat(32),
        APP_DB_PASSWORD: 'p'.repeat(16),
        INGEST_DB_PASSWORD: 'i'.repeat(16),
      }),
    ).toThrow(/PKI_PASSPHRASE: required in production/);
    expect(() =>
      loadConfig({
        THAMANI_ENV: 'production',
        SESSION_SECRET: 's'.repeat(32),
        APP_DB_PASSWORD: 'p'.repeat(16),
        PKI_PASSPHRASE: 'k'.repeat(16),
      }),
    ).toThrow(/INGEST_DB_PASSWORD: required in production/);
    expect(() => loadConfig({ INGEST_DB_PASSWORD: 'short' })).toThrow(
      /INGEST_DB_PASSWORD: must be at least 16/,
    );
    const ok = loadConfig({
      THAMANI_ENV: 'production',
      SESSION_SECRET: 's'.repeat(32),
      APP_DB_PASSWORD: 'p'.repeat(16),
      INGEST_DB_PASSWORD: 'i'.repeat(16),
      PKI_PASSPHRASE: 'k'.repeat(16),
    });
    expect(ok.auth.appDbPassword).toBe('p'.repeat(16));
    expect(ok.db.ingestPassword).toBe('i'.repeat(16));
  });

  it('wants the certificate and key together', () => {
    expect(() => loadConfig({ HTTPS_CERT_FILE: '/x.crt' })).toThrow(/set both or neither/);
  });
});
