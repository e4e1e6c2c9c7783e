/** `app.inject`'s shape over real HTTP, so the same seeding code drives in-process and spawned brokers. */
export function fetchInject(base: string) {
  return async (opts: { method: string; url: string; headers?: Record<string, string>; payload?: unknown }) => {
    const res = await fetch(`${base}${opts.url}`, {
      method: opts.method,
      headers: { ...(opts.payload !== undefined ? { 'content-type': 'application/json' } : {}), ...opts.headers },
      body: opts.payload === undefined ? undefined : JSON.stringify(opts.payload),
    });
    const body = await res.text();
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- test responses are checked by the caller
    return { statusCode: res.status, body, json: (): any => JSON.parse(body), headers: Object.fromEntries(res.headers) };
  };
}

/** Sign in over HTTP; the same Session shape as `login()` in broker.ts. */
export async function httpLogin(base: string, username: string, password: string) {
  const res = await fetch(`${base}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }) });
  if (res.status !== 200) throw new Error(`login as ${username} failed: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { csrfToken: string; user: { id: string } };
  return { cookie: res.headers.getSetCookie().find((c) => c.startsWith('stagedoor_session='))!.split(';')[0]!, csrf: body.csrfToken, userId: body.user.id };
}
