import net from 'node:net';

/**
 * The byte mover. Both sockets of a session read through `onread` (no per-read allocation): a read
 * lands either in one buffer shared by every idle socket of the process, or — once a direction
 * carries bulk data — in a buffer of its own taken from a small pool, which is written to the other
 * side without a copy. A pending write still referencing that buffer pauses its reader until the
 * kernel took the bytes; data read into the shared buffer is copied out at once, because the next
 * read of any socket overwrites it. Idle sessions hold no buffer at all.
 *
 * Half-close is relayed, not collapsed: both sockets allow half-open, and a FIN from one side ends
 * the other side's writing after every byte before it was written (see docs/gateway.md).
 */

const SHARED_SIZE = 64 * 1024;
const PRIVATE_SIZE = 128 * 1024;
/** A read this large means a bulk transfer: give the direction its own buffer. */
const BULK_BYTES = 16 * 1024;
const POOL_MAX = 64;

class ReadBuffers {
  readonly shared = Buffer.allocUnsafeSlow(SHARED_SIZE);
  readonly #free: Buffer[] = [];
  take(): Buffer {
    return this.#free.pop() ?? Buffer.allocUnsafeSlow(PRIVATE_SIZE);
  }
  give(b: Buffer): void {
    if (this.#free.length < POOL_MAX) this.#free.push(b);
  }
}
const buffers = new ReadBuffers();

/** One direction of a session: what `from` reads is written to `to`. */
export class Direction {
  bytes = 0;
  #priv: Buffer | null = null;
  #waiting = false;
  #to: net.Socket | null = null;
  #from: net.Socket | null = null;

  /** The `onread` option for the socket this direction reads from. */
  readonly onread = {
    buffer: (): Buffer => this.#priv ?? buffers.shared,
    callback: (n: number, buf: Buffer): boolean => this.#onRead(n, buf),
  };

  bind(from: net.Socket, to: net.Socket): void {
    this.#from = from;
    this.#to = to;
    to.on('drain', () => {
      if (!this.#waiting) from.resume();
    });
  }

  /** Before the relay starts (a PROXY header is being read): reads go here, copied. */
  intercept: ((chunk: Buffer) => void) | null = null;

  #onRead(n: number, buf: Buffer): boolean {
    if (this.intercept) {
      this.intercept(Buffer.from(buf.subarray(0, n)));
      return true;
    }
    const to = this.#to!;
    const from = this.#from!;
    this.bytes += n;
    let data: Buffer;
    if (buf === this.#priv) {
      data = buf.subarray(0, n);
    } else if (n >= BULK_BYTES) {
      this.#priv = buffers.take();
      buf.copy(this.#priv, 0, 0, n);
      data = this.#priv.subarray(0, n);
    } else {
      data = Buffer.from(buf.subarray(0, n)); // small: a copy out of the shared buffer is cheap
    }
    const below = to.write(data, this.#written);
    if (to.writableLength > 0 && data.buffer === this.#priv?.buffer) {
      // The kernel has not taken it all: the rest still points into our buffer. Read no more until it has.
      this.#waiting = true;
      from.pause();
      return false;
    }
    if (this.#priv && buf === this.#priv && n < BULK_BYTES) this.#release(); // the burst is over
    if (!below) {
      from.pause();
      return false;
    }
    return true;
  }

  /** For a socket without `onread` (the fallback listener): its 'data' chunks are ours to keep. */
  pipeData(): void {
    const from = this.#from!;
    const to = this.#to!;
    from.on('data', (chunk: Buffer) => {
      this.bytes += chunk.length;
      if (!to.write(chunk)) from.pause();
    });
  }

  #written = (): void => {
    if (!this.#waiting) return;
    this.#waiting = false;
    const from = this.#from!;
    if (!from.destroyed && !from.readableEnded) from.resume();
  };

  #release(): void {
    if (this.#priv && !this.#waiting) buffers.give(this.#priv);
    this.#priv = null;
  }

  /** The session ended: hand the buffer back (not while a write may still reference it). */
  dispose(): void {
    if (!this.#waiting) this.#release();
    this.#priv = null;
  }
}

export interface RelayOutcome {
  reason: string;
  bytesUp: number;
  bytesDown: number;
}

/**
 * Relay between an accepted client socket (created with `up.onread`, paused) and a target. Resolves
 * when both sockets are closed. `close(reason)` ends it at once (revocation).
 */
export class RelaySession {
  readonly up = new Direction(); // client → target
  readonly down = new Direction(); // target → client
  #reason: string | null = null;
  #target: net.Socket | null = null;
  #client: net.Socket | null = null;
  readonly done: Promise<RelayOutcome>;
  #resolve!: (o: RelayOutcome) => void;

  constructor(readonly clientUsesOnread = true) {
    this.done = new Promise((resolve) => (this.#resolve = resolve));
  }

  get bytesUp(): number {
    return this.up.bytes;
  }
  get bytesDown(): number {
    return this.down.bytes;
  }

  /** Connect to the target and start relaying. `initial` are bytes already read from the client (after a PROXY header). */
  start(client: net.Socket, target: { host: string; port: number; connectTimeoutMs: number }, initial?: Buffer): void {
    this.#client = client;
    const upstream = net.connect({ host: target.host, port: target.port, allowHalfOpen: true, noDelay: true, keepAlive: true, keepAliveInitialDelay: 60_000, onread: this.down.onread });
    this.#target = upstream;
    client.setNoDelay(true);
    client.setKeepAlive(true, 60_000);
    const timer = setTimeout(() => this.close('target-unreachable: connect timeout'), target.connectTimeoutMs);
    timer.unref();

    let clientClosed = false;
    let targetClosed = false;
    const finish = () => {
      if (!clientClosed || !targetClosed) return;
      this.up.dispose();
      this.down.dispose();
      this.#resolve({ reason: this.#reason ?? 'closed', bytesUp: this.up.bytes, bytesDown: this.down.bytes });
    };
    client.on('close', () => {
      clientClosed = true;
      if (!targetClosed && !upstream.destroyed && upstream.connecting) upstream.destroy();
      finish();
    });
    upstream.on('close', () => {
      targetClosed = true;
      finish();
    });
    client.on('error', (err: NodeJS.ErrnoException) => this.close(`client-error: ${err.code ?? err.message}`));
    upstream.on('error', (err: NodeJS.ErrnoException) => this.close(upstream.connecting || !this.#connected ? `target-unreachable: ${err.code ?? err.message}` : `target-error: ${err.code ?? err.message}`));

    upstream.once('connect', () => {
      clearTimeout(timer);
      this.#connected = true;
      this.up.bind(client, upstream);
      this.down.bind(upstream, client);
      // A FIN from one side: finish writing to the other, then send it the FIN. No byte is lost.
      client.on('end', () => {
        this.#reason ??= 'client-closed';
        upstream.end();
      });
      upstream.on('end', () => {
        this.#reason ??= 'target-closed';
        client.end();
      });
      // Once both of a socket's directions are finished it closes by itself (net.Socket autoDestroy).
      if (!this.clientUsesOnread) this.up.pipeData();
      if (initial?.length) {
        this.up.bytes += initial.length;
        upstream.write(initial);
      }
      client.resume();
    });
  }

  #connected = false;

  /** End the session now (revocation, shutdown, errors): both sockets are destroyed. */
  close(reason: string): void {
    this.#reason ??= reason;
    this.#client?.destroy();
    this.#target?.destroy();
  }
}

/**
 * A TCP listener whose accepted sockets read through `onread` like the target side. Node 20's
 * `net.Server` cannot give accepted sockets `onread`, so the listening handle's connection callback
 * is replaced: each accepted handle is wrapped in a `net.Socket` created with `onread` and
 * `allowHalfOpen`, paused until the grant check has passed. This leans on `server._handle`, stable
 * since Node 0.x; if it is missing (another runtime) the plain 'connection' event is used instead,
 * with the copy that implies.
 */
export function listenWithOnread(
  server: net.Server,
  onSocket: (socket: net.Socket, session: RelaySession) => void,
): void {
  server.on('listening', () => {
    const handle = (server as unknown as { _handle?: { onconnection?: (err: number, h: unknown) => void } })._handle;
    if (!handle || typeof handle.onconnection !== 'function') {
      server.on('connection', (socket) => onSocket(socket, new RelaySession(false)));
      return;
    }
    handle.onconnection = (err: number, clientHandle: unknown) => {
      if (err || !clientHandle) return;
      const session = new RelaySession();
      const socket = new net.Socket({ handle: clientHandle, allowHalfOpen: true, pauseOnCreate: true, readable: true, writable: true, onread: session.up.onread } as net.SocketConstructorOpts);
      onSocket(socket, session);
    };
  });
}
