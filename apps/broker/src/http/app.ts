import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import cookie from '@fastify/cookie';
import rateLimit from '@fastify/rate-limit';
import fastifyStatic from '@fastify/static';
import swagger from '@fastify/swagger';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import type { Config } from '../config/config.ts';
import type { Database } from '../db/database.ts';
import type { Metrics } from '../observability/metrics.ts';
import { registerSecurityHeaders } from './security-headers.ts';
import type { Services } from '../services.ts';
import { registerAuthHook } from './auth-hook.ts';
import { registerErrorHandling } from './error-handler.ts';
import { readTlsMaterial } from './tls.ts';
import { auditRoutes } from './routes/audit.routes.ts';
import { authRoutes } from './routes/auth.routes.ts';
import { ssoRoutes } from './routes/sso.routes.ts';
import { samlRoutes } from './routes/saml.routes.ts';
import { groupsRoutes } from './routes/groups.routes.ts';
import { systemRoutes } from './routes/system.routes.ts';
import { usersRoutes } from './routes/users.routes.ts';
import { authServersRoutes } from './routes/auth-servers.routes.ts';
import { mfaRoutes } from './routes/mfa.routes.ts';
import { signInAdminRoutes } from './routes/sign-in-admin.routes.ts';
import { providersRoutes } from './routes/providers.routes.ts';
import { workstationsRoutes } from './routes/workstations.routes.ts';
import { policiesRoutes } from './routes/policies.routes.ts';
import { connectionsRoutes } from './routes/connections.routes.ts';
import { applyRoutes } from './routes/apply.routes.ts';
import { poolsRoutes } from './routes/pools.routes.ts';
import websocket from '@fastify/websocket';
import { gatewayChannelRoutes } from './routes/gateway-channel.routes.ts';
import { gatewaysRoutes } from './routes/gateways.routes.ts';
import { agentRoutes } from './routes/agent.routes.ts';
import { pricesRoutes } from './routes/prices.routes.ts';
import { reportsRoutes } from './routes/reports.routes.ts';
import { eventsRoutes } from './routes/events.routes.ts';
import { sessionsRoutes } from './routes/sessions.routes.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route registered, for the OpenAPI coverage and role tests. */
    routeList: RouteInfo[];
  }
}

export interface RouteInfo {
  method: string;
  url: string;
  access: string | undefined;
  body: boolean;
  params: boolean;
  query: boolean;
  stream: boolean;
}

export interface AppDeps {
  config: Pick<Config, 'bodyLimitBytes' | 'trustedProxies' | 'loginRatePerMinute' | 'nodeId' | 'session' | 'metrics'> & Partial<Pick<Config, 'tls'>>;
  database: Database;
  services: Services;
  metrics: Metrics;
  log: Logger;
  version: string;
}

// The built console and portal (apps/web, `npm run build:web`; ADR 0009); without a build, a page saying so.
const WEB_DIST = fileURLToPath(new URL('../../../web/dist/', import.meta.url));
const WEB_FALLBACK = fileURLToPath(new URL('../../../web/static/', import.meta.url));
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Build the broker's HTTP app. No listening here: tests use `app.inject`, `main.ts` listens. */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    // HTTPS in the broker itself for sites without a load balancer (STAGEDOOR_TLS_CERT/KEY; main.ts reloads it on change).
    ...(deps.config.tls ? { https: readTlsMaterial(deps.config.tls) } : {}),
    loggerInstance: deps.log.child({ area: 'http' }) as FastifyBaseLogger,
    bodyLimit: deps.config.bodyLimitBytes,
    // X-Forwarded-For is believed only from the configured proxies, never from anyone.
    trustProxy: deps.config.trustedProxies.length ? deps.config.trustedProxies : false,
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    routerOptions: { ignoreTrailingSlash: true },
  });
  const routes: RouteInfo[] = [];
  app.addHook('onRoute', (route) => {
    const schema = route.schema as { body?: unknown; params?: unknown; querystring?: unknown } | undefined;
    for (const method of [route.method].flat()) {
      routes.push({ method, url: route.url, access: route.config?.access, body: !!schema?.body, params: !!schema?.params, query: !!schema?.querystring, stream: !!route.config?.stream });
    }
  });
  app.decorate('routeList', routes);
  // JSON only: a cross-site form can post text/plain without a CORS preflight, so no such parser.
  app.removeContentTypeParser('text/plain');
  // An empty body with a JSON content type (what many clients send for a bodiless POST) means "no body".
  const defaultJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body === '' || (typeof body === 'string' && body.trim() === '')) return done(null, null);
    return defaultJson(request, body as string, done);
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Stagedoor API', version: deps.version, description: 'Connection broker and gateway for virtual workstations' },
      components: {
        securitySchemes: {
          session: { type: 'apiKey', in: 'cookie', name: 'stagedoor_session' },
          bearer: { type: 'http', scheme: 'bearer', description: 'API token from POST /api/v1/me/tokens' },
          agentToken: { type: 'http', scheme: 'bearer', description: 'a workstation agent token (POST /api/v1/workstations/{id}/agent-token, or the pool user data)' },
        },
      },
      security: [{ session: [] }, { bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });
  await app.register(cookie);
  await app.register(rateLimit, { global: false });
  // The gateway control channel; a heartbeat naming ~10,000 sessions is the largest message.
  await app.register(websocket, { options: { maxPayload: 4 * 1024 * 1024 } });

  // First of the request hooks, so that refusals (401, 403, 429) carry the headers too.
  await registerSecurityHeaders(app, { gatewayOrigins: () => deps.services.gateways.tunnelOrigins() });
  registerErrorHandling(app);
  registerObservability(app, deps.metrics); // before auth, so refused requests carry their id too
  registerAuthHook(app, deps.services);

  systemRoutes(app, { database: deps.database, metrics: deps.metrics, metricsConfig: deps.config.metrics, nodeId: deps.config.nodeId });
  authRoutes(app, { services: deps.services, loginRatePerMinute: deps.config.loginRatePerMinute, secureCookie: deps.config.session.secureCookie });
  ssoRoutes(app, { services: deps.services, loginRatePerMinute: deps.config.loginRatePerMinute, secureCookie: deps.config.session.secureCookie });
  samlRoutes(app, { services: deps.services, loginRatePerMinute: deps.config.loginRatePerMinute, secureCookie: deps.config.session.secureCookie });
  usersRoutes(app, { services: deps.services });
  groupsRoutes(app, { services: deps.services });
  auditRoutes(app, { services: deps.services });
  authServersRoutes(app, { services: deps.services });
  mfaRoutes(app, { services: deps.services, loginRatePerMinute: deps.config.loginRatePerMinute });
  signInAdminRoutes(app, { services: deps.services });
  providersRoutes(app, { services: deps.services });
  workstationsRoutes(app, { services: deps.services });
  policiesRoutes(app, { services: deps.services });
  connectionsRoutes(app, { services: deps.services });
  applyRoutes(app, { services: deps.services });
  poolsRoutes(app, { services: deps.services });
  gatewaysRoutes(app, { services: deps.services });
  gatewayChannelRoutes(app, { services: deps.services });
  agentRoutes(app, { services: deps.services });
  pricesRoutes(app, { services: deps.services });
  reportsRoutes(app, { services: deps.services });
  sessionsRoutes(app, { services: deps.services });
  eventsRoutes(app, { services: deps.services });

  const webRoot = fs.existsSync(`${WEB_DIST}index.html`) ? WEB_DIST : WEB_FALLBACK;
  if (fs.existsSync(webRoot)) {
    await app.register(fastifyStatic, { root: webRoot, prefix: '/', wildcard: false, schemaHide: true, decorateReply: false });
  }
  await app.ready();
  return app;
}

function registerObservability(app: FastifyInstance, metrics: Metrics): void {
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  app.addHook('onResponse', async (request, reply) => {
    // The route pattern, not the raw URL, keeps label cardinality bounded.
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.httpDuration.labels(request.method, route, String(reply.statusCode)).observe(reply.elapsedTime / 1000);
  });
}
