import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ephemeralOverlapNotice, readEphemeralPortRange } from '../src/ephemeral-ports.ts';

describe('grant ports and the kernel ephemeral range', () => {
  it.each([
    [20000, 20999, null],
    [20000, 32767, null],
    [61000, 61999, null],
    [32000, 33000, '32768-33000'],
    [40000, 40004, '40000-40004'],
    [60000, 62000, '60000-60999'],
    [1, 65535, '32768-60999'],
  ])('%s-%s against 32768-60999 → %s', (start, end, overlap) => {
    const notice = ephemeralOverlapNotice('STAGEDOOR_GATEWAY_PORTS', start, end, [32768, 60999]);
    if (overlap === null) expect(notice).toBeNull();
    else expect(notice).toContain(`(${start}-${end}) overlaps the kernel's ephemeral port range (32768-60999) on ${overlap}`);
  });

  it('says nothing when the range cannot be read', () => {
    expect(ephemeralOverlapNotice('STAGEDOOR_GATEWAY_PORTS', 40000, 40004, null)).toBeNull();
    expect(readEphemeralPortRange(path.join(os.tmpdir(), 'no-such-file'))).toBeNull();
  });

  it("reads this kernel's range, and a port an outgoing connection holds in it cannot be listened on (why the notice exists)", async () => {
    const range = readEphemeralPortRange();
    expect(range).not.toBeNull();
    expect(range![0]).toBeLessThan(range![1]);
    const server = net.createServer((s) => s.on('error', () => undefined)).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    await new Promise((r) => client.once('connect', r));
    try {
      expect(client.localPort).toBeGreaterThanOrEqual(range![0]);
      expect(client.localPort).toBeLessThanOrEqual(range![1]);
      const grantPort = net.createServer().listen({ port: client.localPort, host: '127.0.0.1' });
      const err = await new Promise<NodeJS.ErrnoException | null>((r) => {
        grantPort.once('error', r);
        grantPort.once('listening', () => r(null));
      });
      grantPort.close();
      expect(err?.code).toBe('EADDRINUSE');
    } finally {
      client.destroy();
      server.close();
    }
  });

  it('reads a range file as the kernel writes it (tab separated)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ephemeral-'));
    const file = path.join(dir, 'range');
    try {
      fs.writeFileSync(file, '10000\t20000\n');
      expect(readEphemeralPortRange(file)).toEqual([10000, 20000]);
      fs.writeFileSync(file, 'garbage\n');
      expect(readEphemeralPortRange(file)).toBeNull();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
