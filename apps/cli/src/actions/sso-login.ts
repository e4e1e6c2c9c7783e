import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiClient } from '../api-client.ts';
import { CliError } from '../cli-error.ts';

/** Long enough to sign in at the IdP with a second factor; the broker's own state expires after 10 minutes. */
const WAIT_MS = 5 * 60_000;

/**
 * `stagedoor login --sso NAME`, the loopback redirect of RFC 8252: listen on 127.0.0.1 (a free port),
 * send the browser to the broker's start URL with that port and the S256 of a fresh verifier, and
 * wait for the browser to come back with a one-time code. The broker did the OIDC exchange; the code
 * is worth nothing without the verifier, which never leaves this process until the exchange.
 */
export async function ssoLogin(base: string, name: string, opts: { openBrowser: boolean }): Promise<{ username: string; url: string }> {
  const list = await fetch(`${base}/api/v1/auth/sso`).catch((err: Error) => {
    throw new CliError(`cannot reach ${base}: ${err.message}`);
  });
  const { items } = (await list.json()) as { items: { name: string; kind: string; startUrl: string }[] };
  const server = items.find((s) => s.name.toLowerCase() === name.toLowerCase());
  if (!server) throw new CliError(`no SSO sign-in named "${name}" on ${base}${items.length ? `: there is ${items.map((s) => `"${s.name}"`).join(', ')}` : ''}`);
  if (server.kind !== 'oidc') throw new CliError(`"${server.name}" is ${server.kind}: the CLI signs in with OIDC servers only; use an API token made in the portal (--token)`);

  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  let resolve!: (code: string) => void;
  let reject!: (err: Error) => void;
  const received = new Promise<string>((res, rej) => ((resolve = res), (reject = rej)));
  const listener = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://127.0.0.1');
    const code = u.pathname === '/callback' ? u.searchParams.get('code') : null;
    res.setHeader('content-type', 'text/html; charset=utf-8');
    if (!code) {
      res.statusCode = 404;
      return res.end('<!doctype html><title>Stagedoor</title><p>Not a sign-in answer.</p>');
    }
    res.end('<!doctype html><title>Stagedoor</title><p>Signed in. You can close this tab and go back to the terminal.</p>');
    resolve(code);
  });
  await new Promise<void>((res, rej) => listener.once('error', rej).listen(0, '127.0.0.1', () => res()));
  const port = (listener.address() as AddressInfo).port;
  const timer = setTimeout(() => reject(new CliError(`no answer from the browser within ${WAIT_MS / 60_000} minutes: run stagedoor login --sso again`)), WAIT_MS);
  try {
    const start = `${base}${server.startUrl}?cliPort=${port}&cliChallenge=${challenge}`;
    console.log(`Sign in at your identity provider in the browser:\n  ${start}`);
    if (opts.openBrowser) openInBrowser(start);
    const code = await received;
    const s = await ApiClient.ssoExchange(base, code, verifier);
    return { username: s.username, url: s.url };
  } finally {
    clearTimeout(timer);
    listener.closeAllConnections();
    listener.close();
  }
}

/** The desktop's browser; failing to start one is fine, the URL is printed. */
function openInBrowser(url: string): void {
  const [cmd, args] = process.platform === 'darwin' ? ['open', [url]] : process.platform === 'win32' ? ['cmd', ['/c', 'start', '', url]] : ['xdg-open', [url]];
  try {
    const child = spawn(cmd, args as string[], { stdio: 'ignore', detached: true });
    child.on('error', () => undefined);
    child.unref();
  } catch {
    // printed above
  }
}
