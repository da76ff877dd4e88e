import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkCsr } from '../provisioning/csr-fns.ts';
import { cliRunner } from '../test/cli-runner.ts';
import type { ApiClient } from './api-client.ts';
import { loadOrEnrol } from './device.ts';
import { deviceKeyAndCsr, keyTypeOf } from './keys.ts';

/** A plain-object API that keeps the CSR it was sent (the enrolment itself is tested against the real API elsewhere). */
function recordingApi(): { api: ApiClient; csrs: string[] } {
  const csrs: string[] = [];
  const api: ApiClient = {
    ensureSiteAndUnit: () => Promise.resolve(),
    registerDevice: () => Promise.resolve('created'),
    enrolmentToken: () => Promise.resolve('enr_test'),
    enroll(_token, csr) {
      csrs.push(csr);
      return Promise.resolve({
        certificate: 'CERT',
        chain: '',
        ca: '',
        serial: '4a',
        notAfter: '',
        brokerUrl: '',
      });
    },
    revoke: () => Promise.resolve(),
    setUnitDefaults: () => Promise.resolve(),
    firmwareSigningKey: () => Promise.resolve(''),
  };
  return { api, csrs };
}

describe('simulated device keys', () => {
  it('makes an ECDSA P-256 key by default and RSA 2048 on request, each with a CSR the gateway accepts', () => {
    const ec = deviceKeyAndCsr('bd-sim-key-1');
    expect(keyTypeOf(ec.key)).toBe('ec');
    expect(checkCsr(ec.csr, 'bd-sim-key-1').keyAlgorithm).toBe('ec-p256');
    const rsa = deviceKeyAndCsr('bd-sim-key-1', 'rsa');
    expect(keyTypeOf(rsa.key)).toBe('rsa');
    expect(checkCsr(rsa.csr, 'bd-sim-key-1').keyAlgorithm).toBe('rsa-2048');
  });

  it('enrols a first-run device with a P-256 key unless told rsa', async () => {
    for (const [keyType, expected] of [
      [undefined, 'ec-p256'],
      ['ec', 'ec-p256'],
      ['rsa', 'rsa-2048'],
    ] as const) {
      const { api, csrs } = recordingApi();
      const dir = mkdtempSync(path.join(os.tmpdir(), 'thamani-simkey-'));
      const identity = await loadOrEnrol(
        dir,
        'bd-sim-key-2',
        'biodigester',
        { site: 's', unit: 'u' },
        api,
        ...(keyType ? [keyType] : []),
      );
      expect(checkCsr(csrs[0]!, 'bd-sim-key-2').keyAlgorithm).toBe(expected);
      expect(keyTypeOf(identity.key)).toBe(expected === 'ec-p256' ? 'ec' : 'rsa');
    }
  });

  it('thamani simulate refuses an unknown --key with a clear error', async () => {
    const thamani = cliRunner(() => ({
      THAMANI_DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'thamani-simkey-cli-')),
      LOG_LEVEL: 'error',
    }));
    const r = await thamani('simulate', '--token', 'tok', '--key', 'dsa', '--ca', '/dev/null');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/unknown key type "dsa": ec or rsa/);
  });

  it('thamani simulate refuses an --interval the device contract does not allow (5 to 86400 whole seconds), before enrolling anything', async () => {
    const thamani = cliRunner(() => ({
      THAMANI_DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'thamani-simint-cli-')),
      LOG_LEVEL: 'error',
    }));
    // Below, at and above each bound, and a fraction: the config schema's range (device-config).
    for (const interval of ['0', '4', '2.5', '86401']) {
      const r = await thamani(
        'simulate',
        '--token',
        'tok',
        '--interval',
        interval,
        '--ca',
        '/dev/null',
      );
      expect([interval, r.code === 0]).toEqual([interval, false]);
      expect(r.stderr).toMatch(/whole number of seconds from 5 to 86400/);
    }
  });
});
