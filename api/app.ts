import type { SecureContextOptions } from 'node:tls';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyPluginAsync,
} from 'fastify';
import {
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import { TLS12_CIPHERS } from '../broker/tls.ts';
import type { Authenticator } from '../auth/principal.ts';
import { authPlugin } from './auth-plugin.ts';
import { installErrorHandler } from './error-handler.ts';
import { installJsonGuard } from './json-guard.ts';

export const DEFAULT_BODY_LIMIT = 64 * 1024;

export interface RoutePlugin {
  /** Mounted under /api/v1 unless `root` is true. */
  plugin: FastifyPluginAsync;
  prefix?: string;
  root?: boolean;
}

export interface ApiDeps {
  logger: Logger;
  authenticator: Authenticator;
  routes: RoutePlugin[];
  /** TLS material when served over HTTPS; tests may omit it and use app.inject(). */
  https?: SecureContextOptions & { minVersion?: 'TLSv1.2' | 'TLSv1.3' };
  /** Default request body limit (64 KiB); routes that take more say so (firmware images). */
  bodyLimit?: number;
  /** Runs before auth and routes: security headers, cookies, OpenAPI, ops routes (api/platform.ts). */
  platform?: (app: FastifyInstance) => Promise<void>;
}

/** Query parameters that carry secrets (setup/reset links) never reach the request log. */
export function redactUrl(url: string): string {
  return url.replace(/([?&](?:token|password|secret)=)[^&#]*/gi, '$1[redacted]');
}

const requestSerializer = (req: {
  method: string;
  url: string;
  host?: string;
  ip?: string;
  socket?: { remotePort?: number };
}) => ({
  method: req.method,
  url: redactUrl(req.url),
  host: req.host,
  remoteAddress: req.ip,
  remotePort: req.socket?.remotePort,
});

/**
 * `Cache-Control: no-store` on every /api response and on every response to an authenticated
 * request or one that sends credentials (pages, /metrics): they carry personal or audit data that no browser cache or proxy
 * may keep (a shared computer, a back button after sign-out). Public responses that chose their
 * own caching (the CRL: no-cache; static assets) keep it, even when the browser sends its cookie.
 */
function installNoStore(app: FastifyInstance): void {
  app.addHook('onSend', (request, reply, payload, done) => {
    // Credentials sent count even where the route did not look at them (a public route).
    const credentials =
      request.headers.authorization !== undefined || request.headers.cookie !== undefined;
    const decided = reply.hasHeader('cache-control');
    if (request.principal || ((credentials || request.url.startsWith('/api/')) && !decided))
      void reply.header('cache-control', 'no-store');
    done(null, payload);
  });
}

/** Builds the app; never listens, so tests drive it with inject() or listen themselves. */
export async function buildApp(deps: ApiDeps): Promise<FastifyInstance> {
  // The raw server is https.Server when TLS material is given; routes never touch it, so the
  // instance is typed as the default one.
  const app = (Fastify as (opts: object) => FastifyInstance)({
    loggerInstance: deps.logger.child(
      {},
      { serializers: { req: requestSerializer } },
    ) as FastifyBaseLogger,
    // TLS 1.2 offers only forward-secret AEAD suites, as the broker does (TLS 1.3's are all so).
    // Set after the caller's options, so material passed in cannot widen them.
    ...(deps.https
      ? {
          https: {
            minVersion: 'TLSv1.2',
            ...deps.https,
            ciphers: TLS12_CIPHERS,
            honorCipherOrder: true,
          },
        }
      : {}),
    // Small by default: no JSON request of ours comes near it; the firmware upload has its own.
    bodyLimit: deps.bodyLimit ?? DEFAULT_BODY_LIMIT,
    trustProxy: false,
    requestIdHeader: false,
    genReqId: () => crypto.randomUUID(),
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandler(app);
  installJsonGuard(app);
  installNoStore(app);
  await app.register(authPlugin, { authenticator: deps.authenticator });
  if (deps.platform) await deps.platform(app);
  app.withTypeProvider<ZodTypeProvider>();
  for (const route of deps.routes) {
    await app.register(route.plugin, {
      prefix: route.root ? (route.prefix ?? '') : `/api/v1${route.prefix ?? ''}`,
    });
  }
  return app;
}
