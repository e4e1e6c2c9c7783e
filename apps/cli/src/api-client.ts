import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CliError } from './cli-error.ts';

/** Where `stagedoor login` keeps the session: one file, readable by its owner only. */
export function sessionFile(): string {
  const base = process.env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config');
  return path.join(base, 'stagedoor', 'session.json');
}

interface StoredSession {
  url: string;
  cookie: string;
  csrf: string;
  username: string;
}

/**
 * A small client for the broker API: a bearer token (`--token`, STAGEDOOR_TOKEN) or the session
 * saved by `stagedoor login`. Errors come back as the API's own message.
 */
export class ApiClient {
  private constructor(
    readonly url: string,
    private readonly auth: { token: string } | { cookie: string; csrf: string },
  ) {}

  static fromOptions(opts: { url?: string; token?: string; sessionPath?: string }): ApiClient {
    if (opts.token) {
      if (!opts.url) throw new CliError('--url (or STAGEDOOR_URL) is needed with a token');
      return new ApiClient(opts.url.replace(/\/$/, ''), { token: opts.token });
    }
    const file = opts.sessionPath ?? sessionFile();
    if (!fs.existsSync(file)) throw new CliError('not signed in: run `stagedoor login --url URL --username NAME` first, or pass --token');
    const s = JSON.parse(fs.readFileSync(file, 'utf8')) as StoredSession;
    return new ApiClient((opts.url ?? s.url).replace(/\/$/, ''), { cookie: s.cookie, csrf: s.csrf });
  }

  static async login(url: string, username: string, password: string, sessionPath = sessionFile()): Promise<StoredSession> {
    const base = url.replace(/\/$/, '');
    const res = await fetch(`${base}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }) }).catch((err: Error) => {
      throw new CliError(`cannot reach ${base}: ${err.message}`);
    });
    const body = (await res.json().catch(() => ({}))) as { csrfToken?: string; mfaRequired?: unknown; error?: { message: string } };
    if (!res.ok) throw new CliError(`sign-in failed: ${body.error?.message ?? res.statusText}`);
    if (body.mfaRequired) throw new CliError('this account needs a second factor: sign in through the web portal, or use an API token (--token)');
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith('stagedoor_session='))?.split(';')[0];
    if (!cookie || !body.csrfToken) throw new CliError('the broker answered without a session');
    const session = { url: base, cookie, csrf: body.csrfToken, username };
    fs.mkdirSync(path.dirname(sessionPath), { recursive: true, mode: 0o700 });
    fs.writeFileSync(sessionPath, JSON.stringify(session), { mode: 0o600 });
    return session;
  }

  async request<T>(method: string, route: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    const res = await this.raw(method, route, body, headers);
    if (res.status === 204) return undefined as T;
    const data = (await res.json().catch(() => ({}))) as T & { error?: { message: string; details?: { fields?: { path: string; message: string }[] } } };
    if (!res.ok) {
      const fields = data.error?.details?.fields;
      const detail = fields?.length ? `\n${fields.map((f) => `  ${f.path.replace(/^body\.document\./, '')}: ${f.message}`).join('\n')}` : '';
      throw new CliError(`${data.error?.message ?? `${res.status} ${res.statusText}`}${detail}`, { retryable: res.status >= 500 });
    }
    return data;
  }

  /**
   * A change that must happen once: one Idempotency-Key, reused for one retry after a network error
   * or a 5xx (a lost answer, a broker restarting behind the load balancer).
   */
  async requestOnce<T>(method: string, route: string, body: unknown): Promise<T> {
    const key = randomUUID();
    try {
      return await this.request<T>(method, route, body, { 'idempotency-key': key });
    } catch (err) {
      if (!(err instanceof CliError) || !err.retryable) throw err;
      await new Promise((r) => setTimeout(r, 1000));
      return this.request<T>(method, route, body, { 'idempotency-key': key });
    }
  }

  async raw(method: string, route: string, body?: unknown, extraHeaders: Record<string, string> = {}): Promise<Response> {
    const headers: Record<string, string> = { ...extraHeaders };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if ('token' in this.auth) headers.authorization = `Bearer ${this.auth.token}`;
    else {
      headers.cookie = this.auth.cookie;
      headers['x-csrf-token'] = this.auth.csrf;
    }
    return fetch(`${this.url}${route}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) }).catch((err: Error) => {
      throw new CliError(`cannot reach ${this.url}: ${err.message}`, { retryable: true });
    });
  }
}
