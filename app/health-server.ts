import type { ServerResponse } from 'node:http';
import https from 'node:https';
import type { Logger } from 'pino';
import { runProbe, type ReadinessProbe } from '../api/platform.ts';

/**
 * A `--role gateway` node serves no API and no dashboards, but its load balancer and container
 * still ask whether it is alive and ready: HTTPS on HTTPS_PORT with /healthz and /readyz only
 * (the same answers as the operator API's, api/platform.ts). Everything else is 404. No
 * /metrics here: it needs an API token, which only the API checks (docs/operations.md).
 */
export async function startHealthServer(deps: {
  host: string;
  port: number;
  tls: { cert: string; key: string };
  probes: ReadinessProbe[];
  logger: Logger;
}): Promise<{ close(): Promise<void> }> {
  const json = (res: ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body));
  };
  const server = https.createServer(
    { cert: deps.tls.cert, key: deps.tls.key, minVersion: 'TLSv1.2' },
    (req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD')
        return json(res, 405, { code: 'METHOD_NOT_ALLOWED', message: 'GET only' });
      if (path === '/healthz') return json(res, 200, { status: 'ok' });
      if (path === '/readyz') {
        void Promise.all(deps.probes.map(async (p) => [p.name, await runProbe(p)] as const)).then(
          (results) => {
            const ready = results.every(([, ok]) => ok);
            json(res, ready ? 200 : 503, { ready, checks: Object.fromEntries(results) });
          },
        );
        return;
      }
      json(res, 404, {
        code: 'NOT_FOUND',
        message: 'this node runs with --role gateway: the API and dashboards are on the api nodes',
      });
    },
  );
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(deps.port, deps.host, () => resolve());
  });
  deps.logger.info({ port: deps.port }, 'gateway health server listening (/healthz, /readyz)');
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
