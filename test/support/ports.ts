import net from 'node:net';

/** A TCP port that was free a moment ago on `host` (the kernel picks it). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * `size` consecutive ports on `host` where nothing listens now (probed), below the kernel's
 * ephemeral range (32768+): a gateway's grant ports there could collide with the local port of any
 * outgoing connection on the machine (EADDRINUSE), and servers other tests start on port 0 never
 * land there.
 */
export async function freePortRange(size: number, host = '127.0.0.1'): Promise<[number, number]> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const start = 25_000 + Math.floor(Math.random() * (32_000 - 25_000 - size));
    let ok = true;
    for (let p = start; p < start + size && ok; p++) ok = await portFree(p, host);
    if (ok) return [start, start + size - 1];
  }
  throw new Error(`no ${size} free consecutive ports between 25000 and 32000 on ${host}`);
}

function portFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });
}

/** Poll `check` until it returns true or `timeoutMs` passes. For readiness, never for assertions on timing. */
export async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 30_000, everyMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
}
