import { performance } from 'node:perf_hooks';

/**
 * The measuring loops the load generators share (load.ts for port forward and HAProxy, routed-load.ts
 * for the routed modes), so that every path is timed by the same code: a 64-byte ping-pong, and
 * `count` connections `concurrency` at a time.
 */

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** What a ping-pong needs of a connection: a raw socket, an SSH channel or a WebSocket alike. */
export interface Duplex {
  write(b: Buffer): void;
  onData(cb: (b: Buffer) => void): void;
  close(): void;
}

/** 64-byte ping-pong for `seconds`; the first tenth (at most 1,000) of the samples is warm-up. */
export function pingPong(conn: Duplex, seconds: number): Promise<{ p50Us: number; p99Us: number; samples: number }> {
  const msg = Buffer.alloc(64, 1);
  const samples: number[] = [];
  const end = performance.now() + seconds * 1000;
  let got = 0;
  let t0 = 0;
  return new Promise((resolve) => {
    const send = () => {
      got = 0;
      t0 = performance.now();
      conn.write(msg);
    };
    conn.onData((d) => {
      got += d.length;
      if (got < 64) return;
      const t = performance.now();
      samples.push((t - t0) * 1000);
      if (t < end) return send();
      conn.close();
      samples.splice(0, Math.min(1000, Math.floor(samples.length / 10)));
      samples.sort((a, b) => a - b);
      resolve({ p50Us: percentile(samples, 50), p99Us: percentile(samples, 99), samples: samples.length });
    });
    send();
  });
}

/** `count` runs of `one(i)`, `concurrency` at a time; `one` resolves true for a success. */
export async function connectionPool(count: number, concurrency: number, one: (i: number) => Promise<boolean>): Promise<{ rate: number; elapsedMs: number; ok: number; failed: number }> {
  let next = 0;
  let ok = 0;
  let failed = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        if (await one(next++)) ok++;
        else failed++;
      }
    }),
  );
  const elapsedMs = performance.now() - t0;
  return { rate: ok / (elapsedMs / 1000), elapsedMs, ok, failed };
}

/** The least-squares slope of y over x through `points` (NaN with fewer than two distinct x). */
export function slope(points: readonly (readonly [number, number])[]): number {
  const n = points.length;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  const sxx = points.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  const sxy = points.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0);
  return sxx > 0 ? sxy / sxx : Number.NaN;
}
