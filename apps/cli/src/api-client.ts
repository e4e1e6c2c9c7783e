import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CliError } from './cli-error.ts';

/** Where `stagedoor login` keeps the session: one file, readable by its owner only. */
export function sessionFile(): string {
  return path.join(configDir(), 'session.json');
}

/** The CLI's settings (the broker URL `login` was given), kept after `logout`. */
export function configFile(): string {
  return path.join(configDir(), 'config.json');
}

function configDir(): string {
  const base = process.env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config');
  return path.join(base, 'stagedoor');
}

interface StoredSession {
  url: string;
  cookie: string;
  csrf: string;
  username: string;
}

export function readSession(file = sessionFile()): StoredSession | null {
  return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as StoredSession) : null;
}

export function rememberedUrl(): string | undefined {
  try {
    return (JSON.parse(fs.readFileSync(configFile(), 'utf8')) as { url?: string }).url;
  } catch {
    return undefined;
  }
}

function writePrivate(file: string, data: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  fs.writeFileSync(file, JSON.stringify(data), { mode: 0o600 });
}

/**
 * A broker URL as typed: `broker.example:8080` (no scheme) would make fetch fail with an obscure
 * message, so it is refused with the two likely spellings.
 */
export function brokerUrl(raw: string): string {
  const url = raw.trim().replace(/\/+$/, '');
  if (!/^https?:\/\//i.test(url)) {
    throw new CliError(`the broker URL needs its scheme: https://${url} (a broker behind TLS) or http://${url} (a local \`stagedoor dev\`)`);
  }
  try {
    new URL(url);
  } catch {
    throw new CliError(`not a URL: ${raw}`);
  }
  return url;
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
      const url = opts.url || rememberedUrl();
      if (!url) throw new CliError('--url (or STAGEDOOR_URL) is needed with a token');
      return new ApiClient(brokerUrl(url), { token: opts.token });
    }
    const s = readSession(opts.sessionPath);
    if (!s) throw new CliError(`not signed in: run \`stagedoor login ${rememberedUrl() ? '' : '--url URL '}--username NAME\` first, or pass --token`);
    return new ApiClient(brokerUrl(opts.url || s.url), { cookie: s.cookie, csrf: s.csrf });
  }

  static async login(url: string, username: string, password: string, sessionPath = sessionFile()): Promise<StoredSession> {
    const base = brokerUrl(url);
    const res = await fetch(`${base}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }) }).catch((err: Error) => {
      throw new CliError(`cannot reach ${base}: ${err.message}`);
    });
    return ApiClient.#keep(base, res, sessionPath, username);
  }

  /**
   * `stagedoor login --sso`: trade the code the browser brought to our loopback listener, with the
   * verifier only this process knows, for a session.
   */
  static async ssoExchange(url: string, code: string, verifier: string, sessionPath = sessionFile()): Promise<StoredSession> {
    const base = brokerUrl(url);
    const res = await fetch(`${base}/api/v1/auth/sso/cli-exchange`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code, verifier }) }).catch((err: Error) => {
      throw new CliError(`cannot reach ${base}: ${err.message}`);
    });
    return ApiClient.#keep(base, res, sessionPath, null);
  }

  /** Save the session a sign-in answer carries (cookie and CSRF token), mode 600. */
  static async #keep(base: string, res: Response, sessionPath: string, username: string | null): Promise<StoredSession> {
    const body = (await res.json().catch(() => ({}))) as { csrfToken?: string; mfaRequired?: unknown; user?: { username: string }; error?: { message: string } };
    if (!res.ok) throw new CliError(`sign-in failed: ${body.error?.message ?? res.statusText}`);
    if (body.mfaRequired) throw new CliError('this account needs a second factor: sign in through the web portal, or use an API token (--token)');
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith('stagedoor_session='))?.split(';')[0];
    if (!cookie || !body.csrfToken) throw new CliError('the broker answered without a session');
    const session = { url: base, cookie, csrf: body.csrfToken, username: username ?? body.user?.username ?? 'unknown' };
    writePrivate(sessionPath, session);
    writePrivate(configFile(), { url: base });
    return session;
  }

  /**
   * End the saved session on the broker, then delete it here. The file goes whatever the broker
   * says (a session it no longer knows is as good as ended); an unreachable broker is reported, since
   * the session then lives on there until it times out.
   */
  static async logout(sessionPath = sessionFile()): Promise<{ username: string; url: string } | null> {
    const s = readSession(sessionPath);
    if (!s) return null;
    try {
      const res = await new ApiClient(s.url, { cookie: s.cookie, csrf: s.csrf }).raw('POST', '/api/v1/auth/logout');
      if (!res.ok && res.status !== 401) throw new CliError(`the broker refused to end the session (${res.status}); it was deleted here`);
    } catch (err) {
      if (err instanceof CliError && err.retryable) throw new CliError(`${err.message}: the session was deleted here, and ends on the broker when it times out`);
      throw err;
    } finally {
      fs.rmSync(sessionPath, { force: true });
    }
    return { username: s.username, url: s.url };
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
