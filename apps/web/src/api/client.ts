import type { ErrorBody } from './types.ts';

export interface FieldError {
  path: string;
  message: string;
}

/** An API refusal, with the field paths of a 400 (without the `body.` prefix) for the forms. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly fields: FieldError[] = [],
  ) {
    super(message);
  }
}

/** Dispatched on `window` when the API answers 401 to a signed-in call. */
export const SIGNED_OUT = 'stagedoor:signed-out';

let csrfToken: string | null = null;

/** The session's CSRF token (from login or GET /me); sent with every change. */
export function setCsrfToken(token: string | null): void {
  csrfToken = token;
}

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export async function api<T>(method: Method, path: string, body?: unknown, extraHeaders: Record<string, string> = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json', ...extraHeaders };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrfToken) headers['x-csrf-token'] = csrfToken;
  const res = await fetch(path, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  const json: unknown = text ? safeJson(text) : null;
  if (!res.ok) {
    // The session ended (expired, signed out elsewhere): the shell goes back to the sign-in page.
    if (res.status === 401 && !path.startsWith('/api/v1/auth/') && path !== '/api/v1/me') window.dispatchEvent(new Event(SIGNED_OUT));
    const err = (json as ErrorBody | null)?.error;
    const details = err?.details as { fields?: FieldError[] } | undefined;
    const fields = (details?.fields ?? []).map((f) => ({ path: f.path.replace(/^body\.?/, ''), message: f.message }));
    throw new ApiError(res.status, err?.code ?? 'http_error', err?.message ?? `${method} ${path}: HTTP ${res.status}`, fields);
  }
  return json as T;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export const get = <T>(path: string) => api<T>('GET', path);
export const post = <T>(path: string, body?: unknown) => api<T>('POST', path, body);

/**
 * A change that must happen once however often it is sent: one Idempotency-Key per user action,
 * reused for the one retry after a network error or a 5xx (a lost answer, a broker restarting).
 */
export async function postOnce<T>(path: string, body: unknown): Promise<T> {
  // randomUUID needs a secure context; getRandomValues works on plain http too.
  const key = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
  try {
    return await api<T>('POST', path, body, { 'idempotency-key': key });
  } catch (err) {
    if (err instanceof ApiError && err.status < 500) throw err;
    return api<T>('POST', path, body, { 'idempotency-key': key });
  }
}
export const patch = <T>(path: string, body: unknown) => api<T>('PATCH', path, body);
export const put = <T>(path: string, body: unknown) => api<T>('PUT', path, body);
export const del = (path: string) => api<void>('DELETE', path);

/** `?a=1&b=x` from the set values. */
export function query(params: Record<string, string | number | boolean | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
