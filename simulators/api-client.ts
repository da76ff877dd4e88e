import { httpsRequest } from './https-json.ts';

/** The operator API calls a simulated fleet makes, with an API token (`thamani user token`). */
export interface ApiClient {
  ensureSiteAndUnit(
    site: string,
    unit: string,
    kind: 'biodigester' | 'collection_point',
  ): Promise<void>;
  registerDevice(input: { id: string; unit: string; site: string }): Promise<'created' | 'exists'>;
  enrolmentToken(deviceId: string): Promise<string>;
  enroll(
    token: string,
    csr: string,
  ): Promise<{
    certificate: string;
    chain: string;
    ca: string;
    serial: string;
    notAfter: string;
    brokerUrl: string;
  }>;
  revoke(serial: string, reason: string): Promise<void>;
  /** Replaces the defaults of the device's unit (desired configuration, audited; ADR 0013). */
  setUnitDefaults(deviceId: string, defaults: Record<string, unknown>): Promise<void>;
  /** The firmware-signing public key a device pins (public, no token needed). */
  firmwareSigningKey(): Promise<string>;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function createApiClient(opts: { baseUrl: string; token: string; ca: string }): ApiClient {
  const call = async <T>(method: string, p: string, body?: unknown, auth = true): Promise<T> => {
    const res = await httpsRequest(`${opts.baseUrl}/api/v1${p}`, {
      ca: opts.ca,
      method,
      ...(body !== undefined ? { body } : {}),
      headers: auth ? { authorization: `Bearer ${opts.token}` } : {},
    });
    if (res.status >= 300) {
      const err = (() => {
        try {
          return res.json<{ code: string; message: string }>();
        } catch {
          return { code: 'HTTP', message: res.body.slice(0, 200) };
        }
      })();
      throw new ApiError(
        res.status,
        err.code,
        `${method} ${p}: ${res.status} ${err.code} ${err.message}`,
      );
    }
    return res.json<T>();
  };
  const tolerateExisting = async (fn: () => Promise<unknown>): Promise<'created' | 'exists'> => {
    try {
      await fn();
      return 'created';
    } catch (err) {
      if (err instanceof ApiError && err.status === 409) return 'exists';
      throw err;
    }
  };
  return {
    async ensureSiteAndUnit(site, unit, kind) {
      await tolerateExisting(() => call('POST', '/sites', { name: site }));
      await tolerateExisting(() => call('POST', '/units', { site, kind, name: unit }));
    },
    registerDevice: (input) => tolerateExisting(() => call('POST', '/devices', input)),
    enrolmentToken: async (deviceId) =>
      (await call<{ token: string }>('POST', `/devices/${deviceId}/enrolment-tokens`, {})).token,
    enroll: (token, csr) => call('POST', '/enroll', { token, csr }, false),
    revoke: async (serial, reason) =>
      void (await call('POST', `/certificates/${serial}/revoke`, { reason })),
    async setUnitDefaults(deviceId, defaults) {
      const d = await call<{ unitId: string; kind: string }>('GET', `/devices/${deviceId}`);
      await call('PUT', `/units/${d.unitId}/config`, { kind: d.kind, defaults });
    },
    firmwareSigningKey: async () =>
      (await call<{ publicKeyPem: string }>('GET', '/firmware/signing-key', undefined, false))
        .publicKeyPem,
  };
}
