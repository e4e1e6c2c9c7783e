/**
 * Typed domain errors. Services throw these; `http/error-handler.ts` is the only place that turns
 * them into HTTP. Each carries a stable machine-readable `code` and a message meant for people.
 */
export abstract class DomainError extends Error {
  abstract readonly code: string;
  constructor(
    message: string,
    readonly details?: unknown,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

export interface FieldProblem {
  path: string;
  message: string;
}

export class InvalidInputError extends DomainError {
  readonly code = 'invalid_input';
  constructor(message: string, readonly fields: FieldProblem[] = [], options?: { cause?: unknown }) {
    super(message, fields.length ? { fields } : undefined, options);
  }
}

export class NotFoundError extends DomainError {
  readonly code = 'not_found';
  constructor(readonly entity: string, id: string) {
    super(`${entity} ${id} does not exist`);
  }
}

export class ConflictError extends DomainError {
  readonly code = 'conflict';
}

export class UnauthenticatedError extends DomainError {
  readonly code = 'unauthenticated';
  constructor(message = 'sign in first: this needs a session cookie or a bearer token') {
    super(message);
  }
}

export class InvalidCredentialsError extends DomainError {
  readonly code = 'invalid_credentials';
  constructor() {
    super('wrong username or password');
  }
}

export class ForbiddenError extends DomainError {
  readonly code = 'forbidden';
}

export class CsrfError extends DomainError {
  readonly code = 'csrf_failed';
  constructor() {
    super('missing or wrong X-CSRF-Token header: cookie-authenticated changes must send the token from the login answer or GET /api/v1/me');
  }
}

/** No machine can be given to the user right now: the pool is full, paused, or has none free. */
export class NoDesktopAvailableError extends DomainError {
  readonly code = 'no_desktop_available';
}

export class UnavailableError extends DomainError {
  readonly code = 'unavailable';
}

/** Postgres unique violation (23505), recognised through driver wrappers such as Drizzle's. */
export function isUniqueViolation(err: unknown, constraint?: string): boolean {
  const pgErr = findPgError(err);
  return pgErr?.code === '23505' && (!constraint || pgErr.constraint === constraint);
}

/** 23503 (foreign key) or 23001 (restrict): the row is still referenced, or references nothing. */
export function isForeignKeyViolation(err: unknown): boolean {
  const code = findPgError(err)?.code;
  return code === '23503' || code === '23001';
}

/** Socket errors of a database connection that could not be made or was cut. */
const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
/**
 * SQLSTATEs of a server that is going away, starting, overloaded or read-only: 57P01–57P03
 * (shutdown, crash recovery, "cannot connect now"), 53300 (too many connections), 25006 (a write
 * reached a standby: the endpoint still points at the old writer, now a reader, mid-failover).
 */
const UNAVAILABLE_STATES = new Set(['57P01', '57P02', '57P03', '53300', '25006']);
/** node-postgres errors without a code when a connection ends under a query or cannot be made in time. */
const CONNECTION_MESSAGES = /^(Connection terminated|Client has encountered a connection error|Client was closed and is not queryable|timeout exceeded when trying to connect)/;

/**
 * The database cannot be reached or used right now (a restart, a failover, an overload): the
 * request may well work again in a moment. Recognised through driver wrappers such as Drizzle's.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; e && depth < 6; depth++) {
    const candidate = e as { code?: unknown; message?: unknown; cause?: unknown };
    if (typeof candidate.code === 'string') {
      if (CONNECTION_CODES.has(candidate.code) || UNAVAILABLE_STATES.has(candidate.code) || candidate.code.startsWith('08')) return true;
    } else if (typeof candidate.message === 'string' && CONNECTION_MESSAGES.test(candidate.message)) return true;
    e = candidate.cause;
  }
  return false;
}

/** The SQLSTATE of a PostgreSQL error (through driver wrappers), or undefined. */
export function pgErrorCode(err: unknown): string | undefined {
  return findPgError(err)?.code;
}

function findPgError(err: unknown): { code?: string; constraint?: string } | undefined {
  let e: unknown = err;
  for (let depth = 0; e && depth < 5; depth++) {
    const candidate = e as { code?: unknown; constraint?: string; cause?: unknown };
    if (typeof candidate.code === 'string' && /^[0-9A-Z]{5}$/.test(candidate.code)) return candidate as { code: string; constraint?: string };
    e = candidate.cause;
  }
  return undefined;
}
