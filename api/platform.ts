import fastifyCompress from '@fastify/compress';
import fastifyCookie from '@fastify/cookie';
import helmet from '@fastify/helmet';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { jsonSchemaTransform, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Metrics } from './metrics.ts';

export interface ReadinessProbe {
  name: string;
  check(): Promise<boolean>;
}

/** How long /readyz waits for one probe: a database that does not answer is not ready either. */
export const PROBE_TIMEOUT_MS = 3000;

/**
 * A probe's answer, false if it throws or has not answered within `timeoutMs` (a pool waiting
 * for a connection to a host that is gone would hold /readyz for its whole connect timeout).
 */
export async function runProbe(
  probe: ReadinessProbe,
  timeoutMs = PROBE_TIMEOUT_MS,
): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>(
    (resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)),
  );
  try {
    // (A probe that throws before returning its promise, e.g. on a component not built yet, too.)
    const answer = Promise.resolve()
      .then(() => probe.check())
      .then(
        (ok) => ok === true,
        () => false,
      );
    return await Promise.race([answer, late]);
  } finally {
    clearTimeout(timer);
  }
}

export interface PlatformDeps {
  metrics: Metrics;
  /** Checked by /readyz: database reachable, broker listening, ... */
  probes: readonly ReadinessProbe[];
  cookieSecret: string;
  version: string;
}

/** HSTS: two years, subdomains, preload-eligible (RFC 6797 §6.1; hstspreload.org asks ≥ 1 year). */
export const HSTS_MAX_AGE = 63_072_000;

/**
 * What every HTTPS response and the app as a whole get: security headers (HSTS, strict CSP),
 * signed cookies, form bodies for the server-rendered pages, OpenAPI (+ UI at /docs), /healthz,
 * /readyz, /metrics. Call before any route is registered (swagger sees only later routes).
 */
export async function registerApiPlatform(app: FastifyInstance, deps: PlatformDeps): Promise<void> {
  await app.register(helmet, {
    hsts: { maxAge: HSTS_MAX_AGE, includeSubDomains: true, preload: true },
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        fontSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'none'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        upgradeInsecureRequests: [],
      },
    },
    referrerPolicy: { policy: 'no-referrer' },
  });
  // gzip/brotli for pages, assets and JSON: dashboards are read on phones over slow links.
  // (The live stream is written raw and never compressed.)
  await app.register(fastifyCompress, { global: true, threshold: 1024, encodings: ['br', 'gzip'] });
  await app.register(fastifyCookie, { secret: deps.cookieSecret });
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string', bodyLimit: 16 * 1024 },
    (_req, body, done) => {
      // A field sent several times (checkboxes of a plain form) is joined with commas, as the
      // pages' script sends it; otherwise the last one would silently win.
      const out: Record<string, string> = Object.create(null) as Record<string, string>;
      for (const [k, v] of new URLSearchParams(body as string))
        out[k] = Object.hasOwn(out, k) ? `${out[k]},${v}` : v;
      done(null, out);
    },
  );

  await app.register(swagger, {
    openapi: {
      info: { title: 'Thamani IoT operator API', version: deps.version },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer' },
          session: { type: 'apiKey', in: 'cookie', name: '__Host-thamani_session' },
        },
      },
      security: [{ bearer: [] }, { session: [] }],
    },
    transform: jsonSchemaTransform,
  });
  // Swagger UI's page has no viewport tag: a phone would render it 980 px wide. Added to its HTML
  // (a hook registered before the plugin, so its routes inherit it).
  app.addHook('onSend', (request, reply, payload, done) => {
    const url = request.routeOptions.url;
    if (
      (url === '/docs' || url === '/docs/') &&
      typeof payload === 'string' &&
      String(reply.getHeader('content-type')).startsWith('text/html')
    ) {
      done(
        null,
        payload.replace(
          '<meta charset="UTF-8">',
          '<meta charset="UTF-8"><meta name="viewport" content="width=device-width, initial-scale=1">',
        ),
      );
      return;
    }
    done(null, payload);
  });
  // Swagger UI serves its own CSP for /docs; tightened to same-origin only (no remote fonts,
  // styles or validator badge, no framing).
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    staticCSP: true,
    // BaseLayout: no top bar, whose Swagger logo is an SVG with an inline <style> the CSP refuses.
    uiConfig: { validatorUrl: null, layout: 'BaseLayout' },
    transformStaticCSP: (header) =>
      header
        .replace(/ https:/g, '')
        .replace(/ validator\.swagger\.io/g, '')
        .replace("frame-ancestors 'self'", "frame-ancestors 'none'"),
  });

  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched';
    deps.metrics.httpRequests.inc({
      method: request.method,
      route,
      status: String(reply.statusCode),
    });
    deps.metrics.httpDuration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
    done();
  });

  const typed = app.withTypeProvider<ZodTypeProvider>();
  typed.get(
    '/healthz',
    {
      schema: {
        tags: ['ops'],
        summary: 'Liveness: the process answers',
        response: { 200: z.object({ status: z.literal('ok') }) },
      },
    },
    () => ({ status: 'ok' as const }),
  );
  typed.get(
    '/readyz',
    {
      schema: {
        tags: ['ops'],
        summary: 'Readiness: every probe (database, broker, ...) passes',
        response: {
          200: z.object({ ready: z.boolean(), checks: z.record(z.string(), z.boolean()) }),
          503: z.object({ ready: z.boolean(), checks: z.record(z.string(), z.boolean()) }),
        },
      },
    },
    async (_request, reply) => {
      const results = await Promise.all(
        deps.probes.map(async (p) => [p.name, await runProbe(p)] as const),
      );
      const ready = results.every(([, ok]) => ok);
      return reply.status(ready ? 200 : 503).send({ ready, checks: Object.fromEntries(results) });
    },
  );
  typed.get(
    '/metrics',
    {
      preHandler: app.requirePermission('metrics:read'),
      schema: { tags: ['ops'], summary: 'Prometheus metrics (API token with metrics:read)' },
    },
    async (_request, reply) =>
      reply.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics()),
  );
}
