import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { RecordTap } from '../../src/routed/record-tap.ts';

/** A protected record as TLS 1.3 frames it outside: type 23, version 3.3, length, body. */
function record(body: number, size = 40): Buffer {
  const b = Buffer.alloc(5 + size, body);
  b.writeUInt8(23, 0);
  b.writeUInt16BE(0x0303, 1);
  b.writeUInt16BE(size, 3);
  return b;
}

const sockets: net.Socket[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) s.destroy();
});

/** A tap over a socket nobody writes to: what the TLS side reads is pushed through `fromClient`. */
function tap(): RecordTap {
  const socket = new net.Socket();
  sockets.push(socket);
  return new RecordTap(socket, Buffer.alloc(0));
}

describe('RecordTap: the records kept for a handoff', () => {
  it('keeps whole records in order, a record split across chunks once it is complete', () => {
    const t = tap();
    const [a, b] = [record(1), record(2)];
    t.fromClient.add(Buffer.concat([a, b.subarray(0, 10)]));
    expect(t.fromClient.records).toEqual([a]);
    expect(t.fromClient.partial.length).toBe(10);
    t.fromClient.add(b.subarray(10));
    expect(t.fromClient.records).toEqual([a, b]);
    expect(t.fromClient.partial.length).toBe(0);
  });

  it('past 24 records it stops: the records are dropped, nothing more is read, and the tap is never quiet again', () => {
    const t = tap();
    for (let i = 0; i < 24; i++) t.fromClient.add(record(i));
    expect(t.fromClient.records).toHaveLength(24);
    t.fromClient.add(Buffer.concat([record(99), record(100).subarray(0, 7)]));
    expect(t.fromClient.overflow).toBe(true);
    expect(t.fromClient.records).toHaveLength(0);
    expect(t.fromClient.partial.length).toBe(0);
    t.fromClient.add(record(101));
    expect(t.fromClient.records).toHaveLength(0);
    expect(t.quiet).toBe(false);
  });

  it('a connection Node keeps (keepsNode): the records kept so far are dropped, and no more are kept', () => {
    const t = tap();
    t.fromClient.add(record(1));
    t.toClient.add(Buffer.concat([record(2), record(3).subarray(0, 9)]));
    t.keepsNode();
    expect([t.fromClient.records, t.toClient.records, t.toClient.partial.length]).toEqual([[], [], 0]);
    t.fromClient.add(record(4));
    t.toClient.add(record(5));
    expect([t.fromClient.records, t.toClient.records]).toEqual([[], []]);
    expect(t.quiet).toBe(false);
  });
});
