import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import {
  ConflictError,
  CsrfError,
  DomainError,
  ForbiddenError,
  InvalidCredentialsError,
  InvalidInputError,
  NotFoundError,
  NoDesktopAvailableError,
  UnauthenticatedError,
  UnavailableError,
  isDatabaseUnavailable,
} from '../domain/errors.ts';
import { HostUnresolvableError } from '../domain/workstations/host-names.ts';
import { LoginLockedError, MfaFailedError, SsoRefusedError } from '../domain/identity/sign-in-errors.ts';
import { ProviderError, type ProviderErrorKind } from '../providers/cloud/cloud-provider.ts';

/** The one place where errors become HTTP. Domain code never chooses a status code. */
const STATUS: [new (...args: never[]) => DomainError, number][] = [
  [InvalidInputError, 400],
  [UnauthenticatedError, 401],
  [InvalidCredentialsError, 401],
  [ForbiddenError, 403],
  [CsrfError, 403],
  [NotFoundError, 404],
  [ConflictError, 409],
  [NoDesktopAvailableError, 409],
  // The request was fine; the host's DNS name is not (today): a state of the world, like a full pool.
  [HostUnresolvableError, 409],
  [UnavailableError, 503],
  [MfaFailedError, 401],
  [SsoRefusedError, 401],
  [LoginLockedError, 429],
];

/**
 * A cloud's refusal: the caller's mistake is a 4xx; the cloud failing us (capacity, throttling after
 * retries, refused credentials, outage) is a 502 with the cloud's own message — never a 500.
 */
const PROVIDER_STATUS: Record<ProviderErrorKind, number> = {
  invalid: 400,
  notFound: 404,
  unsupported: 409,
  capacity: 502,
  throttled: 502,
  auth: 502,
  unavailable: 502,
};

/** Codes for the 4xx errors Fastify itself raises before a handler runs. */
const FASTIFY_CODES: Record<number, string> = {
  400: 'bad_request',
  404: 'not_found',
  405: 'method_not_allowed',
  406: 'not_acceptable',
  413: 'payload_too_large',
  414: 'uri_too_long',
  415: 'unsupported_media_type',
  429: 'rate_limited',
  431: 'headers_too_large',
};

export function sendError(reply: FastifyReply, status: number, code: string, message: string, details?: unknown): FastifyReply {
  if (reply.request.routeOptions.config?.htmlErrors && /text\/html/.test(reply.request.headers.accept ?? '')) {
    const page = `<!doctype html><html lang="en"><meta charset="utf-8"><title>Sign-in refused · Stagedoor</title><main><h1>Sign-in refused</h1><p>${escapeHtml(message)}</p><p>Request id: <code>${escapeHtml(String(reply.request.id))}</code></p><p><a href="/">Back to sign-in</a></p></main></html>`;
    return reply.code(status).type('text/html; charset=utf-8').send(page);
  }
  return reply
    .code(status)
    .type('application/json; charset=utf-8')
    .send({ error: { code, message, requestId: String(reply.request.id), ...(details === undefined ? {} : { details }) } });
}

export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const domain: unknown = err;
    if (domain instanceof ProviderError) return sendError(reply, PROVIDER_STATUS[domain.kind], domain.code, domain.message, domain.details);
    if (domain instanceof DomainError) {
      if (domain instanceof LoginLockedError) reply.header('retry-after', String((domain.details as { retryAfterSeconds: number }).retryAfterSeconds));
      const status = STATUS.find(([type]) => domain instanceof type)?.[1] ?? 400;
      return sendError(reply, status, domain.code, domain.message, domain.details);
    }
    if (hasZodFastifySchemaValidationErrors(err)) {
      const where = err.validationContext ?? 'body';
      const fields = err.validation.map((v) => ({
        path: `${where}${v.instancePath.replaceAll('/', '.')}`.replace(/\.$/, ''),
        message: v.message ?? 'is invalid',
      }));
      const summary = fields.map((f) => `${f.path}: ${f.message}`).join('; ');
      return sendError(reply, 400, 'invalid_input', `invalid request: ${summary}`, { fields });
    }
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      const code = FASTIFY_CODES[status] ?? 'bad_request';
      return sendError(reply, status, code, humanise(err, status));
    }
    if (isDatabaseUnavailable(err)) {
      // Not a bug to investigate but a database restarting or failing over: tell the client to retry
      // (with the same Idempotency-Key for a connect), and keep the log to one line per request.
      request.log.warn({ error: err.message.slice(-300) }, 'database unavailable');
      reply.header('retry-after', '2');
      return sendError(reply, 503, 'database_unavailable', 'the database is unavailable for a moment (restarting or failing over); retry shortly');
    }
    request.log.error({ err }, 'unhandled error');
    return sendError(reply, 500, 'internal', 'internal error; the request id identifies it in the broker log');
  });

  app.setNotFoundHandler((request, reply) => sendError(reply, 404, 'not_found', `no route for ${request.method} ${request.url.split('?')[0]}`));
}

function humanise(err: FastifyError, status: number): string {
  if (err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || (err instanceof SyntaxError && status === 400)) return `the body is not valid JSON: ${err.message}`;
  if (err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') return 'the body is empty but Content-Type says JSON';
  if (status === 413) return 'the request body is larger than this server accepts';
  if (status === 415) return `unsupported Content-Type: send application/json`;
  return err.message;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
