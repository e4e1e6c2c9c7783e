import type net from 'node:net';
import { Duplex } from 'node:stream';

/** Protected records kept per direction before a handoff (handshake, tickets, the token line): more is not our client. */
const MAX_RECORDS = 24;

/** The records one direction carried: complete protected records (outer type 23), in order. */
class RecordLog {
  readonly records: Buffer[] = [];
  /** Bytes of a record not complete yet. */
  partial: Buffer = Buffer.alloc(0);
  overflow = false;

  add(chunk: Buffer): void {
    // Past the limit the count is not trusted anyway (no handoff): stop reading records, so a session
    // Node keeps relaying pays no more for the tap than a copy.
    if (this.overflow) return;
    let buf = this.partial.length ? Buffer.concat([this.partial, chunk]) : chunk;
    while (buf.length >= 5) {
      const len = 5 + buf.readUInt16BE(3);
      if (buf.length < len) break;
      if (buf[0] === 23) {
        if (this.records.length < MAX_RECORDS) this.records.push(Buffer.from(buf.subarray(0, len)));
        else return this.stop();
      }
      buf = buf.subarray(len);
    }
    this.partial = Buffer.from(buf);
  }

  /** Keep no more records, and drop those kept: this connection will not change hands. */
  stop(): void {
    this.overflow = true;
    this.records.length = 0;
    this.partial = Buffer.alloc(0);
  }
}

/**
 * The TCP socket of a native-mode tunnel connection as Node's TLS sees it (ADR 0032): every byte passes
 * through unchanged, and the protected records of each direction are kept until the handoff, when
 * tls13-keys.ts counts those the application keys protected. After `handOff()` nothing more is written
 * to the socket (Node's TLS may still try, e.g. a close_notify as it is destroyed) and destroying this
 * stream leaves the socket to whoever took its descriptor.
 */
export class RecordTap extends Duplex {
  readonly fromClient = new RecordLog();
  readonly toClient = new RecordLog();
  #handedOff = false;

  constructor(readonly socket: net.Socket, head: Buffer) {
    super({ allowHalfOpen: false });
    if (head.length) this.#received(head);
    socket.on('data', (chunk: Buffer) => this.#received(chunk));
    socket.on('end', () => this.push(null));
    socket.on('close', () => this.destroy());
    socket.on('error', (err) => this.destroy(err));
  }

  #received(chunk: Buffer): void {
    if (this.#handedOff) return;
    this.fromClient.add(chunk);
    if (!this.push(chunk)) this.socket.pause();
  }

  override _read(): void {
    if (!this.#handedOff) this.socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    if (this.#handedOff) return done();
    this.toClient.add(chunk);
    this.socket.write(chunk, done);
  }

  override _final(done: () => void): void {
    if (!this.#handedOff) this.socket.end();
    done();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    if (!this.#handedOff) this.socket.destroy();
    done(err);
  }

  /** Whether the socket can change hands: no record half-read or half-written, nothing queued either way. */
  get quiet(): boolean {
    return this.fromClient.partial.length === 0 && this.toClient.partial.length === 0 && !this.fromClient.overflow && !this.toClient.overflow && this.socket.writableLength === 0 && this.socket.readableLength === 0;
  }

  /**
   * Node keeps this connection (a browser mode: the terminal, RDCleanPath): the records kept for a
   * handoff are dropped, and no more are kept, so such a session holds no more than one without a tap.
   */
  keepsNode(): void {
    this.fromClient.stop();
    this.toClient.stop();
  }

  /** From now on the socket is someone else's: stop reading it and writing to it. */
  handOff(): void {
    this.#handedOff = true;
    this.socket.pause();
    this.socket.removeAllListeners('data');
  }
}
