import https from 'node:https';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiHarness, type ApiHarness } from '../test/api-harness.ts';
import { selfSignedCertificate } from './dev-cert.ts';
import { createHttpsRedirectServer } from './redirect-server.ts';

let h: ApiHarness;
let port: number;
let ca: string;
beforeAll(async () => {
  const { cert, key } = selfSignedCertificate('localhost', 1);
  ca = cert;
  h = await createApiHarness({ https: { cert, key } });
  await h.app.listen({ port: 0, host: '127.0.0.1' });
  port = (h.app.server.address() as AddressInfo).port;
});

function get(path: string): Promise<{
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, path, ca, servername: 'localhost' }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
  });
}

describe('HTTPS', () => {
  it('serves over real TLS with HSTS (≥ 1 year, subdomains) and a strict CSP', async () => {
    for (const path of ['/healthz', '/login', '/api/v1/nowhere', '/docs/']) {
      const res = await get(path);
      const hsts = String(res.headers['strict-transport-security']);
      expect(Number(/max-age=(\d+)/.exec(hsts)?.[1])).toBeGreaterThanOrEqual(31_536_000);
      expect(hsts).toContain('includeSubDomains');
      const csp = String(res.headers['content-security-policy']);
      expect(csp).toContain("default-src 'self'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).not.toContain('unsafe-inline');
      expect(res.headers['x-content-type-options']).toBe('nosniff');
    }
  });

  it('errors are { code, message, requestId } without internals', async () => {
    const res = await get('/api/v1/nowhere');
    expect(res.status).toBe(404);
    expect(Object.keys(JSON.parse(res.body) as object).sort()).toEqual([
      'code',
      'message',
      'requestId',
    ]);
  });

  it('publishes the OpenAPI document, readiness and liveness', async () => {
    const doc = JSON.parse((await get('/docs/json')).body) as {
      openapi: string;
      paths: Record<string, unknown>;
    };
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/api/v1/audit/verify', '/api/v1/users', '/api/v1/auth/login']),
    );
    expect((await get('/healthz')).status).toBe(200);
    expect(JSON.parse((await get('/readyz')).body)).toEqual({
      ready: true,
      checks: { database: true },
    });
  });

  it('serves Prometheus metrics to a token with metrics:read only', async () => {
    expect((await h.app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(401);
    const res = await h.app.inject({
      method: 'GET',
      url: '/metrics',
      headers: { authorization: `Bearer ${await h.tokenFor('technician')}` },
    });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('thamani_http_requests_total');
  });
});

describe('HTTP → HTTPS redirect', () => {
  const redirect = createHttpsRedirectServer({
    publicHostname: 'gateway.example',
    httpsPort: 8443,
  });
  let httpPort: number;
  beforeAll(async () => {
    await new Promise<void>((r) => redirect.listen(0, '127.0.0.1', r));
    httpPort = (redirect.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => redirect.close(() => r())));

  /** Sends only the request head announcing a huge body; returns what came back before we sent any of it. */
  function headOnly(extra: string): Promise<{ response: string; closedByServer: boolean }> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(httpPort, '127.0.0.1');
      let response = '';
      socket.on('data', (d: Buffer) => (response += d.toString('latin1')));
      socket.on('end', () => resolve({ response, closedByServer: true }));
      socket.on('error', reject);
      socket.setTimeout(60_000, () => {
        // only a server that never answers; a slow machine is not one
        socket.destroy();
        resolve({ response, closedByServer: false });
      });
      socket.write(
        `POST /anything?x=1 HTTP/1.1\r\nHost: evil.example\r\nContent-Type: application/octet-stream\r\nContent-Length: 10737418240\r\n${extra}\r\n`,
      );
    });
  }

  it('answers 301 to the HTTPS URL before a single body byte is sent, then closes', async () => {
    const { response, closedByServer } = await headOnly('');
    expect(response).toMatch(/^HTTP\/1\.1 301 /);
    expect(response).toMatch(/\r\nlocation: https:\/\/gateway\.example:8443\/anything\?x=1\r\n/i);
    expect(response).not.toMatch(/evil\.example/);
    expect(closedByServer).toBe(true);
  });

  it('answers Expect: 100-continue with the 301, never with 100 Continue', async () => {
    const { response } = await headOnly('Expect: 100-continue\r\n');
    expect(response).toMatch(/^HTTP\/1\.1 301 /);
    expect(response).not.toContain('100 Continue');
  });
});
