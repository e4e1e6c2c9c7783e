import http from 'node:http';
import { decodeJwt, exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import Provider from 'oidc-provider';
import { freePort } from './ports.ts';

export interface OpUser {
  password: string;
  claims: Record<string, unknown>;
  /** What the IdP says it did at sign-in (the ID token's amr). */
  amr: string[];
}

/** How the proxy in front of the OP spoils the next token answers (the attacks a relying party must refuse). */
export type TokenTamper = 'none' | 'tampered-signature' | 'wrong-audience' | 'expired' | 'foreign-key' | 'rotated';

export interface TestOp {
  /** The issuer URL (the tampering proxy; the OP itself listens behind it). */
  issuer: string;
  clientId: string;
  clientSecret: string;
  tamper: TokenTamper;
  /** Token requests the OP answered (a replayed code shows up as a second one). */
  tokenRequests: number;
  /** Key rotation: publish a second key in the JWKS and sign ID tokens with it from now on. */
  rotateKey(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A real OpenID Provider (`oidc-provider`, a certified implementation) on loopback, with users, a
 * `groups` claim and `amr`, and a small login form (`login`, `password`). In front of it, a proxy
 * that can spoil the ID token in token answers: re-signed with the OP's own key but for another
 * audience or already expired, signed by a key the OP never published, or altered after signing.
 * Each is a real ID token a relying party must refuse.
 */
export async function startTestOp(opts: { users: Record<string, OpUser>; redirectUris: string[]; postLogoutRedirectUris?: string[] }): Promise<TestOp> {
  const [opPort, proxyPort] = [await freePort(), await freePort()];
  const issuer = `http://127.0.0.1:${proxyPort}`;
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk: JWK = { ...(await exportJWK(privateKey)), kid: 'op-key-1', use: 'sig', alg: 'RS256' };
  const foreign = await generateKeyPair('RS256');
  // The JWKS the proxy serves (the OP's key; after rotateKey, a second one too).
  const published: JWK[] = [{ ...publicKeyOf(jwk), kid: 'op-key-1', use: 'sig', alg: 'RS256' }];
  let rotated: CryptoKey | null = null;
  const op: TestOp = {
    issuer,
    clientId: 'stagedoor',
    clientSecret: 'stagedoor-client-secret',
    tamper: 'none',
    tokenRequests: 0,
    rotateKey: async () => {
      const next = await generateKeyPair('RS256', { extractable: true });
      published.push({ ...(await exportJWK(next.publicKey)), kid: 'op-key-2', use: 'sig', alg: 'RS256' });
      rotated = next.privateKey;
      op.tamper = 'rotated';
    },
    close: async () => undefined,
  };

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: op.clientId,
        client_secret: op.clientSecret,
        redirect_uris: opts.redirectUris,
        post_logout_redirect_uris: opts.postLogoutRedirectUris ?? [],
        grant_types: ['authorization_code'],
        response_types: ['code'],
      },
    ],
    jwks: { keys: [jwk] },
    findAccount: async (_ctx: unknown, id: string) => (opts.users[id] ? { accountId: id, claims: async () => ({ sub: id, ...opts.users[id]!.claims }) } : undefined),
    claims: { openid: ['sub', 'acr', 'amr', 'auth_time'], profile: ['name', 'preferred_username'], email: ['email'], groups: ['groups'] },
    // Scope claims in the ID token itself, as Okta, Entra ID and Keycloak put them there.
    conformIdTokenClaims: false,
    interactions: { url: (_ctx: unknown, i: { uid: string }) => `/interaction/${i.uid}` },
    features: { devInteractions: { enabled: false }, rpInitiatedLogout: { enabled: true } },
    pkce: { required: () => true },
    cookies: { keys: ['test-op-cookie-key'] },
  });
  const handle = provider.callback();

  const opServer = http.createServer(async (req, res) => {
    const m = /^\/interaction\/([^/?]+)/.exec(req.url ?? '');
    if (!m) return handle(req, res);
    try {
      const details = await provider.interactionDetails(req, res);
      if (req.method === 'GET') {
        res.setHeader('content-type', 'text/html');
        return res.end(`<!doctype html><title>Test IdP</title><h1>Test IdP sign-in</h1><form method="post"><label>Login <input name="login"></label><label>Password <input name="password" type="password"></label><button type="submit">Sign in at IdP</button></form>`);
      }
      const form = new URLSearchParams(await body(req));
      const login = form.get('login') ?? '';
      const user = opts.users[login];
      if (!user || user.password !== form.get('password')) {
        res.statusCode = 401;
        return res.end('wrong login or password');
      }
      const grant = new provider.Grant({ accountId: login, clientId: details.params.client_id });
      grant.addOIDCScope(String(details.params.scope ?? 'openid'));
      const grantId = await grant.save();
      await provider.interactionFinished(req, res, { login: { accountId: login, amr: user.amr }, consent: { grantId } }, { mergeWithLastSubmission: false });
    } catch (err) {
      res.statusCode = 400;
      res.end(String(err));
    }
  });

  // The proxy: everything goes through to the OP (Host kept, so the OP's URLs name the proxy); token answers may be spoiled on the way back.
  const proxy = http.createServer(async (req, res) => {
    if (req.method === 'GET' && req.url === '/jwks') {
      res.setHeader('content-type', 'application/jwk-set+json');
      return res.end(JSON.stringify({ keys: published }));
    }
    const payload = await body(req);
    const up = http.request({ host: '127.0.0.1', port: opPort, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      const chunks: Buffer[] = [];
      ur.on('data', (c: Buffer) => chunks.push(c));
      ur.on('end', async () => {
        let text = Buffer.concat(chunks);
        if (req.url?.startsWith('/token') && ur.statusCode === 200) {
          op.tokenRequests++;
          text = Buffer.from(await spoil(text.toString()));
        }
        const headers = { ...ur.headers };
        delete headers['content-length'];
        delete headers['transfer-encoding'];
        res.writeHead(ur.statusCode ?? 502, { ...headers, 'content-length': String(text.length) });
        res.end(text);
      });
    });
    up.on('error', (err) => {
      res.statusCode = 502;
      res.end(String(err));
    });
    up.end(payload);
  });

  async function spoil(text: string): Promise<string> {
    if (op.tamper === 'none') return text;
    const answer = JSON.parse(text) as { id_token: string };
    const claims = decodeJwt(answer.id_token);
    const now = Math.floor(Date.now() / 1000);
    const sign = (c: Record<string, unknown>, key = privateKey, kid = 'op-key-1') => new SignJWT(c).setProtectedHeader({ alg: 'RS256', kid }).sign(key);
    if (op.tamper === 'tampered-signature') {
      // Someone changes who the token is about and keeps the old signature.
      const [h, , s] = answer.id_token.split('.');
      const p = Buffer.from(JSON.stringify({ ...claims, preferred_username: 'admin' })).toString('base64url');
      answer.id_token = `${h}.${p}.${s}`;
    } else if (op.tamper === 'wrong-audience') answer.id_token = await sign({ ...claims, aud: 'some-other-client' });
    else if (op.tamper === 'expired') answer.id_token = await sign({ ...claims, iat: now - 7200, exp: now - 3600 });
    else if (op.tamper === 'foreign-key') answer.id_token = await sign(claims, foreign.privateKey, 'op-key-1');
    else if (op.tamper === 'rotated' && rotated) answer.id_token = await sign(claims, rotated, 'op-key-2');
    return JSON.stringify(answer);
  }

  await listen(opServer, opPort);
  await listen(proxy, proxyPort);
  op.close = async () => {
    for (const s of [proxy, opServer]) {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
  };
  return op;
}

function body(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString()));
    req.on('error', reject);
  });
}

function listen(server: http.Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
}

/**
 * A browser played with fetch: follows redirects by hand, keeps each host's cookies, and signs in at
 * the test OP's form. Stops at the first URL `stopAt` accepts (e.g. the broker's callback) without
 * requesting it, so a test can deliver it where and as often as it likes.
 */
export class FetchBrowser {
  readonly cookies = new Map<string, Map<string, string>>();

  async get(url: string, init: { method?: string; body?: string; headers?: Record<string, string> } = {}): Promise<Response> {
    const u = new URL(url);
    const jar = this.cookies.get(u.host) ?? new Map<string, string>();
    this.cookies.set(u.host, jar);
    const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(url, { method: init.method ?? 'GET', body: init.body, redirect: 'manual', headers: { ...(cookie ? { cookie } : {}), ...init.headers } });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair!.indexOf('=');
      jar.set(pair!.slice(0, i).trim(), pair!.slice(i + 1));
    }
    return res;
  }

  /** Follow redirects from `url`, signing in at the OP's form with `login`/`password`, until `stopAt(url)`. */
  async signInAt(url: string, login: string, password: string, stopAt: (u: URL) => boolean): Promise<URL> {
    let next = new URL(url);
    for (let hops = 0; hops < 20; hops++) {
      if (stopAt(next)) return next;
      const res = await this.get(next.href);
      const location = res.headers.get('location');
      if (location) {
        next = new URL(location, next);
        continue;
      }
      if (res.status === 200 && next.pathname.startsWith('/interaction/')) {
        const form = await this.get(next.href, { method: 'POST', body: new URLSearchParams({ login, password }).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
        const to = form.headers.get('location');
        if (!to) throw new Error(`the IdP refused the sign-in: ${form.status} ${await form.text()}`);
        next = new URL(to, next);
        continue;
      }
      throw new Error(`stuck at ${next.href}: ${res.status} ${await res.text()}`);
    }
    throw new Error('too many redirects');
  }
}

/** The public half of an RSA private JWK. */
function publicKeyOf(jwk: JWK): JWK {
  const { kty, n, e } = jwk;
  return { kty, n, e };
}
