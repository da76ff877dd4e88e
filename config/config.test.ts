import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.ts';

describe('loadConfig', () => {
  it('gives laptop defaults when nothing is set', () => {
    const config = loadConfig({}, '/srv/app');
    expect(config.dataDir).toBe(path.resolve('/srv/app', 'data'));
    expect(config.db.url).toBeUndefined();
    expect(config.mqtt.port).toBe(8883);
    expect(config.https.port).toBe(8443);
    expect(config.https.redirectPort).toBe(8080);
  });

  it('names every bad variable at once, without a stack trace in the message', () => {
    let error: unknown;
    try {
      loadConfig({ DATABASE_URL: 'nonsense', HTTPS_PORT: '70000', LOG_LEVEL: 'loud' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(problems).toHaveLength(3);
    expect(problems[0]).toMatch(/^DATABASE_URL: must be a URL like postgres:\/\//);
    expect(problems.find((p) => p.startsWith('HTTPS_PORT'))).toContain('"70000"');
    expect(problems.find((p) => p.startsWith('LOG_LEVEL'))).toBeDefined();
    expect((error as Error).message).not.toMatch(/\bat \w+ \(/);
  });

  it('takes the dashboards’ time zone from DASHBOARD_TIME_ZONE (default Africa/Nairobi) and refuses one Intl does not know', () => {
    expect(loadConfig({}).dashboards.timeZone).toBe('Africa/Nairobi');
    expect(loadConfig({ DASHBOARD_TIME_ZONE: 'Africa/Kampala' }).dashboards.timeZone).toBe(
      'Africa/Kampala',
    );
    try {
      loadConfig({ DASHBOARD_TIME_ZONE: 'Mars/Olympus_Mons' });
      expect.unreachable();
    } catch (err) {
      expect((err as ConfigError).problems).toEqual([
        expect.stringMatching(/^DASHBOARD_TIME_ZONE: must be an IANA time zone/),
      ]);
    }
  });

  it('never echoes a database URL back, even a bad one', () => {
    expect(() => loadConfig({ DATABASE_URL: 'mysql://admin:hunter2@db/x' })).toThrow(ConfigError);
    try {
      loadConfig({ DATABASE_URL: 'mysql://admin:hunter2@db/x' });
    } catch (err) {
      expect((err as Error).message).not.toContain('hunter2');
    }
  });

  it('refuses two listeners on one port', () => {
    expect(() => loadConfig({ MQTT_PORT: '9000', HTTPS_PORT: '9000' })).toThrow(/must differ/);
  });

  it('refuses a renewal window as long as a device certificate (every device would renew on every connection)', () => {
    expect(() => loadConfig({ PKI_DEVICE_CERT_DAYS: '30', PKI_RENEWAL_WINDOW_DAYS: '30' })).toThrow(
      /PKI_RENEWAL_WINDOW_DAYS \(30\) must be shorter than PKI_DEVICE_CERT_DAYS \(30\)/,
    );
    expect(() => loadConfig({ PKI_DEVICE_CERT_DAYS: '10' })).toThrow(/must be shorter/); // the default window is 30 days
    expect(
      loadConfig({ PKI_DEVICE_CERT_DAYS: '31', PKI_RENEWAL_WINDOW_DAYS: '30' }).pki.deviceCertDays,
    ).toBe(31);
  });

  it('treats an empty variable as unset', () => {
    expect(loadConfig({ DATABASE_URL: '' }).db.url).toBeUndefined();
  });

  it('keeps sign-in metadata 90 days unless told, and refuses a retention of 0 days', () => {
    expect(loadConfig({}).auth.signInMetadataRetentionDays).toBe(90);
    expect(
      loadConfig({ SIGNIN_METADATA_RETENTION_DAYS: '30' }).auth.signInMetadataRetentionDays,
    ).toBe(30);
    expect(() => loadConfig({ SIGNIN_METADATA_RETENTION_DAYS: '0' })).toThrow(
      /SIGNIN_METADATA_RETENTION_DAYS/,
    );
  });

  it('is frozen', () => {
    const config = loadConfig({});
    expect(Object.isFrozen(config.db)).toBe(true);
  });
});

describe('secret files', () => {
  it('reads DATABASE_URL from DATABASE_URL_FILE', async () => {
    const { mkdtemp, writeFile } = await import('node:fs/promises');
    const os = await import('node:os');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'cfg-'));
    const file = path.join(dir, 'db-url');
    await writeFile(file, 'postgres://thamani:s3cret@db:5432/thamani\n');
    expect(loadConfig({ DATABASE_URL_FILE: file }).db.url).toBe(
      'postgres://thamani:s3cret@db:5432/thamani',
    );
    expect(() => loadConfig({ DATABASE_URL_FILE: path.join(dir, 'missing') })).toThrow(
      /DATABASE_URL_FILE: cannot read .*ENOENT/,
    );
  });

  it('clusters only with a redis:// REDIS_URL, and believes PROXY headers only from listed addresses', () => {
    expect(loadConfig({}).cluster).toBeUndefined();
    expect(loadConfig({}).mqtt.proxyProtocol).toBeUndefined();
    expect(loadConfig({ REDIS_URL: 'redis://redis:6379/0' }).cluster).toEqual({
      redisUrl: 'redis://redis:6379/0',
      connectTimeoutMs: 5000,
    });
    expect(() => loadConfig({ REDIS_URL: 'http://redis:6379' })).toThrow(ConfigError);
    expect(
      loadConfig({
        MQTT_PROXY_PROTOCOL: 'true',
        MQTT_TRUSTED_PROXIES: '10.0.0.5, 10.1.0.0/16,fd00::/8',
      }).mqtt.proxyProtocol,
    ).toEqual({ trustedProxies: ['10.0.0.5', '10.1.0.0/16', 'fd00::/8'] });
    for (const bad of [
      { MQTT_PROXY_PROTOCOL: 'true' },
      { MQTT_PROXY_PROTOCOL: 'true', MQTT_TRUSTED_PROXIES: 'haproxy.local' },
      { MQTT_PROXY_PROTOCOL: 'true', MQTT_TRUSTED_PROXIES: '10.0.0.0/33' },
      { MQTT_PROXY_PROTOCOL: 'yes', MQTT_TRUSTED_PROXIES: '10.0.0.5' },
    ])
      expect(() => loadConfig(bad), JSON.stringify(bad)).toThrow(ConfigError);
  });
});

describe('notifications', () => {
  it('configures email and SMS only when their settings are given, in pairs', () => {
    expect(loadConfig({}).notifications).toMatchObject({
      smtpUrl: undefined,
      africasTalking: undefined,
      summaryHour: 7,
    });
    const c = loadConfig({
      NOTIFY_SMTP_URL: 'smtp://u:p@mail.example:587',
      NOTIFY_EMAIL_FROM: 'Thamani <alerts@example.org>',
      AT_USERNAME: 'thamani',
      AT_API_KEY: 'atsk_0123456789',
    });
    expect(c.notifications.africasTalking).toEqual({
      username: 'thamani',
      apiKey: 'atsk_0123456789',
      senderId: undefined,
      baseUrl: 'https://api.africastalking.com',
    });
    expect(() => loadConfig({ AT_USERNAME: 'thamani' })).toThrow(/AT_USERNAME and AT_API_KEY/);
    expect(() => loadConfig({ NOTIFY_SMTP_URL: 'smtp://mail.example' })).toThrow(
      /NOTIFY_EMAIL_FROM: required/,
    );
  });

  it('never echoes the SMTP URL or the API key when refusing them', () => {
    let error: unknown;
    try {
      loadConfig({ NOTIFY_SMTP_URL: 'http://u:hunter2@mail.example', AT_API_KEY: 'short' });
    } catch (err) {
      error = err;
    }
    const text = (error as ConfigError).problems.join('\n');
    expect(text).toMatch(/NOTIFY_SMTP_URL/);
    expect(text).toMatch(/AT_API_KEY/);
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain('short');
  });
});
