import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.ts';

describe('security configuration', () => {
  it('defaults sessions to 30 min idle and 12 h absolute', () => {
    const c = loadConfig({});
    expect(c.auth).toMatchObject({ sessionIdleMinutes: 30, sessionMaxHours: 12, sessionSecret: undefined });
  });

  it('requires the session secret, the API database password and the CA passphrase in production, and never echoes them', () => {
    expect(() => loadConfig({ THAMANI_ENV: 'production' })).toThrow(ConfigError);
    let problems = '';
    try {
      loadConfig({ THAMANI_ENV: 'production', SESSION_SECRET: 'short-secret' });
    } catch (err) {
      problems = (err as ConfigError).problems.join('\n');
    }
    expect(problems).toMatch(/SESSION_SECRET: must be at least 32/);
    expect(problems).not.toContain('short-secret');
    expect(() => loadConfig({ THAMANI_ENV: 'production', SESSION_SECRET: 's'.repeat(32), APP_DB_PASSWORD: 'p'.repeat(16) })).toThrow(/PKI_PASSPHRASE: required in production/);
    const ok = loadConfig({ THAMANI_ENV: 'production', SESSION_SECRET: 's'.repeat(32), APP_DB_PASSWORD: 'p'.repeat(16), PKI_PASSPHRASE: 'k'.repeat(16) });
    expect(ok.auth.appDbPassword).toBe('p'.repeat(16));
  });

  it('wants the certificate and key together', () => {
    expect(() => loadConfig({ HTTPS_CERT_FILE: '/x.crt' })).toThrow(/set both or neither/);
  });
});
