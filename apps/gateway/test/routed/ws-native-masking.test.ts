import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const require = createRequire(import.meta.url);

/**
 * The HTTPS tunnel unmasks every frame a client sends (RFC 6455 masks client→server frames). In
 * JavaScript that is a loop over every byte: 2–3 ms per MiB on the benchmark machine, against
 * 0.04–0.07 ms with the native `bufferutil` (docs/gateway.md, "Routed modes"). `ws` uses it when it
 * can load it; this fails if the gateway's install lost it (its linux-x64 prebuild needs no compiler).
 */
describe('the tunnel unmasks client frames natively', () => {
  it('ws loaded bufferutil and unmasks through it, correctly', () => {
    // (Not in ws's exports: the module ws itself uses, by its path.)
    const wsUtil = require(path.join(path.dirname(require.resolve('ws')), 'lib/buffer-util.js')) as { unmask(b: Buffer, m: Buffer): void };
    expect(() => require('bufferutil')).not.toThrow();
    expect(process.env.WS_NO_BUFFER_UTIL).toBeUndefined();
    // With bufferutil, ws replaces its unmask with one that hands buffers of 32 bytes and more to it
    // (a Node with its own native unmask, 22.x and later, is used first; Node 20 has none).
    expect(wsUtil.unmask.toString()).toMatch(/bufferUtil\.unmask|websocketUnmask/);
    const mask = Buffer.from([0x12, 0x34, 0x56, 0x78]);
    const data = Buffer.from(Array.from({ length: 70_000 }, (_, i) => i & 0xff));
    const want = Buffer.from(data.map((b, i) => b ^ mask[i & 3]!));
    wsUtil.unmask(data, mask);
    expect(data.equals(want)).toBe(true);
  });
});
