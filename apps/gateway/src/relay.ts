import net from 'node:net';
import { boundHalfClose } from './half-close.ts';
import { nativeAdd, nativeBytes, nativeClose, nativeEndReason, type NativeEnd } from './native-relay.ts';

/**
 * The byte mover. Both sockets of a session read through `onread` (no per-read allocation): a read
 * lands either in one buffer shared by every idle socket of the process, or — once a direction
 * carries bulk data — in one of two 256 KiB buffers of its own from a small pool, which are written to the
 * other side without a copy: while the kernel still holds a write from one, the next read fills the
 * other, and the reader pauses only when both are referenced. Data read into the shared buffer is
 * copied out at once, because the next read of any socket overwrites it. Idle sessions hold no
 * buffer, and no closure of their own: socket events and `onread` go to functions shared by every
 * session, which find their direction (and through it the session) through one symbol on the socket
 * (memory per idle connection is one of the benchmark's figures). Per-connection arrow functions in
 * object literals are avoided on purpose: the TypeScript loader keeps function names, which gives
 * each such closure a dictionary of properties of its own (~250 bytes).
 *
 * Half-close is relayed, not collapsed: both sockets allow half-open, and a FIN from one side ends
 * the other side's writing after every byte before it was written (see docs/gateway.md). The other
 * side's silence after that is bounded (`boundHalfClose`, as the native relay's linger.c does).
 *
 * With the native relay (native-relay.ts, ADR 0011) all of this runs only until the target answers:
 * then both descriptors go to the relay threads and the JavaScript sockets are closed.
 */

const SHARED_SIZE = 64 * 1024;
const PRIVATE_SIZE = 256 * 1024;
/** A read this large means a bulk transfer: give the direction buffers of its own. */
const BULK_BYTES = 16 * 1024;
const PRIVATE_PER_DIRECTION = 2;
const POOL_MAX = 64;

const shared = Buffer.allocUnsafeSlow(SHARED_SIZE);
const pool: Buffer[] = [];
const take = () => pool.pop() ?? Buffer.allocUnsafeSlow(PRIVATE_SIZE);
const give = (b: Buffer) => {
  if (pool.length < POOL_MAX) pool.push(b);
};

const DIRECTION = Symbol('stagedoor.direction');
type Tagged = net.Socket & { [DIRECTION]?: Direction };

/** One direction of a session: what `from` reads is written to `to`. */
export class Direction {
  bytes = 0;
  constructor(readonly session: RelaySession) {}
  from: net.Socket | null = null;
  to: net.Socket | null = null;
  /** Before the relay starts (a PROXY header is being read): reads go here, copied. */
  intercept: ((chunk: Buffer) => void) | null = null;
  /** This direction's own read buffers, once it carried bulk data. */
  #slots: Buffer[] | null = null;
  /** Own buffers a pending write still references (with `#slots`: idle directions hold neither). */
  #busy: Buffer[] | null = null;
  /** The own buffer handed to libuv for the next read. */
  #lent: Buffer | null = null;
  #lastSmall = false;
  #disposed = false;

  /** The buffer the next read of `from` goes into (called by Node right after each read). */
  nextBuffer(): Buffer {
    const slots = this.#slots;
    if (!slots) return shared;
    const busy = this.#busy!;
    if (this.#lastSmall && busy.length === 0) {
      // The burst is over and nothing references our buffers: back to the shared one.
      this.#returnSlots();
      return shared;
    }
    const free = slots.find((b) => !busy.includes(b));
    this.#lent = free ?? null;
    return free ?? shared;
  }

  onRead(n: number, buf: Buffer): boolean {
    if (this.intercept) {
      this.intercept(Buffer.from(buf.subarray(0, n)));
      return true;
    }
    this.bytes += n;
    this.#lastSmall = n < BULK_BYTES;
    let own: Buffer | null = null;
    if (buf !== shared) {
      own = buf;
      this.#lent = null;
    } else if (n >= BULK_BYTES) {
      // A bulk transfer begins: from now on reads land in buffers of this direction.
      this.#slots ??= Array.from({ length: PRIVATE_PER_DIRECTION }, take);
      const busy = (this.#busy ??= []);
      own = this.#slots.find((b) => b !== this.#lent && !busy.includes(b)) ?? null;
      if (own) buf.copy(own, 0, 0, n);
    }
    if (!own) {
      // Small reads (input events, keystrokes): a cheap copy out of the shared buffer.
      return this.to!.write(Buffer.from(buf.subarray(0, n))) ? true : this.#pause();
    }
    const busy = this.#busy!;
    busy.push(own);
    const held = own;
    this.to!.write(own.subarray(0, n), () => this.#released(held));
    // Both buffers still referenced by writes the kernel has not taken: wait for one.
    return busy.length < PRIVATE_PER_DIRECTION ? true : this.#pause();
  }

  #pause(): false {
    this.from!.pause();
    return false;
  }

  #released(own: Buffer): void {
    const busy = this.#busy!;
    busy.splice(busy.indexOf(own), 1);
    if (this.#disposed) {
      if (busy.length === 0) this.#returnSlots();
      return;
    }
    const from = this.from!;
    const to = this.to!;
    if (busy.length < PRIVATE_PER_DIRECTION && from.isPaused() && !from.destroyed && !from.readableEnded && to.writableLength < to.writableHighWaterMark) from.resume();
  }

  /** `to` drained: read again unless both own buffers are still referenced. */
  drained(): void {
    if ((this.#busy?.length ?? 0) < PRIVATE_PER_DIRECTION) this.from!.resume();
  }

  #returnSlots(): void {
    for (const b of this.#slots ?? []) give(b);
    this.#slots = null;
    this.#busy = null;
  }

  /** The session ended: buffers go back to the pool (once no write references them). */
  dispose(): void {
    this.#disposed = true;
    if (!this.#busy?.length) this.#returnSlots();
  }
}

/** `onread` of a relayed socket. Node calls `callback` as the socket's method (shared), `buffer` as a plain function (bound, one per socket). */
function onreadFor(direction: Direction) {
  return { buffer: direction.nextBuffer.bind(direction), callback: onReadCallback };
}
function onReadCallback(this: Tagged, n: number, buf: Buffer): boolean {
  return this[DIRECTION]!.onRead(n, buf);
}

export interface RelayOutcome {
  reason: string;
  bytesUp: number;
  bytesDown: number;
}

/**
 * Relay between an accepted client socket (created with `onreadFor(session.up)`, paused) and a target. `onEnd`
 * runs once both sockets are closed. `close(reason)` ends it at once (revocation).
 */
export class RelaySession {
  readonly up = new Direction(this); // client → target
  readonly down = new Direction(this); // target → client
  reason: string | null = null;
  client: net.Socket | null = null;
  target: net.Socket | null = null;
  /** Runs once when the session is over; a function shared by every session (it gets the session), not a closure per session. */
  onEnd: ((o: RelayOutcome, session: RelaySession) => void) | null = null;
  /** Whatever the owner of the session keeps with it (the port forwarder: its grant). */
  owner: unknown = null;
  #open = 2;
  #timer: NodeJS.Timeout | null = null;
  connected = false;
  /** Hand the session to the native relay once the target answers (the owner sets it, see native-relay.ts). */
  native = false;
  /** The native relay's id for this session while it relays it, or -1. */
  nativeId = -1;
  /** Bytes read from the client before the relay began, kept for the native relay to send first. */
  #initial: Buffer | null = null;

  constructor(readonly clientUsesOnread = true) {}

  get bytesUp(): number {
    return this.nativeId >= 0 ? nativeBytes(this.nativeId)[0] : this.up.bytes;
  }
  get bytesDown(): number {
    return this.nativeId >= 0 ? nativeBytes(this.nativeId)[1] : this.down.bytes;
  }

  /** Tag an accepted socket before its first read. */
  adopt(client: net.Socket): void {
    (client as Tagged)[DIRECTION] = this.up;
    this.client = client;
    this.up.from = client;
  }

  /** Connect to the target and start relaying. `initial` are bytes already read from the client (after a PROXY header). */
  start(client: net.Socket, target: { host: string; port: number; connectTimeoutMs: number }, initial?: Buffer): void {
    if (this.client !== client) this.adopt(client);
    const upstream = net.connect({ host: target.host, port: target.port, allowHalfOpen: true, noDelay: true, keepAlive: true, keepAliveInitialDelay: 60_000, onread: onreadFor(this.down) }) as Tagged;
    upstream[DIRECTION] = this.down;
    this.target = upstream;
    this.up.to = upstream;
    this.down.from = upstream;
    this.down.to = client;
    if (initial?.length) {
      if (this.native) this.#initial = initial;
      else {
        this.up.bytes += initial.length;
        upstream.write(initial);
      }
    }
    this.#timer = setTimeout(onConnectTimeout, target.connectTimeoutMs, this);
    this.#timer.unref();
    client.on('close', onClose);
    upstream.on('close', onClose);
    client.on('error', onError);
    upstream.on('error', onError);
    upstream.once('connect', onTargetConnect);
  }

  /** @internal */
  connectedToTarget(): void {
    clearTimeout(this.#timer!);
    this.#timer = null;
    this.connected = true;
    const client = this.client!;
    const upstream = this.target!;
    if (this.native) {
      if (this.#handOff(client, upstream)) return;
      if (this.#initial) {
        this.up.bytes += this.#initial.length;
        upstream.write(this.#initial);
        this.#initial = null;
      }
    }
    client.on('end', onEnd);
    upstream.on('end', onEnd);
    client.on('drain', onDrain);
    upstream.on('drain', onDrain);
    if (!this.clientUsesOnread) {
      client.on('data', onData);
    }
    client.resume();
  }

  /** Give both descriptors to the native relay and close our sockets; false: relay here (nothing changed). */
  #handOff(client: net.Socket, upstream: net.Socket): boolean {
    const clientFd = socketFd(client);
    const targetFd = socketFd(upstream);
    // Bytes Node already holds (read but not relayed, or queued to write) would be lost in the move.
    if (clientFd < 0 || targetFd < 0 || client.readableLength > 0 || upstream.readableLength > 0 || upstream.writableLength > 0) return false;
    try {
      this.nativeId = nativeAdd(clientFd, targetFd, this.#initial ?? undefined, this);
    } catch {
      return false; // out of descriptors or memory for the duplicates: this session relays in JavaScript
    }
    this.#initial = null;
    detachSocket(client);
    detachSocket(upstream);
    // Let the closed sockets go: an idle session is then this object, its directions and the native state.
    this.client = this.target = null;
    this.up.from = this.up.to = this.down.from = this.down.to = null;
    return true;
  }

  /** @internal the native relay finished the session. */
  nativeEnded(end: NativeEnd): void {
    this.nativeId = -1;
    this.up.bytes = end.bytesUp;
    this.down.bytes = end.bytesDown;
    this.reason ??= nativeEndReason(end);
    this.onEnd?.({ reason: this.reason ?? 'closed', bytesUp: end.bytesUp, bytesDown: end.bytesDown }, this);
  }

  /** @internal one side's FIN came in: the session ends if the other side then stays silent. */
  halfClosed(): void {
    if (!this.#timer) this.#timer = boundHalfClose(this, totalBytes, closeHalfClosed);
  }

  /** @internal one socket closed; the session ends when both have. */
  socketClosed(): void {
    if (--this.#open > 0) {
      // The client went before the target answered: nothing to wait for.
      if (this.target && this.target.connecting) this.target.destroy();
      return;
    }
    if (this.#timer) clearTimeout(this.#timer);
    this.up.dispose();
    this.down.dispose();
    this.onEnd?.({ reason: this.reason ?? 'closed', bytesUp: this.up.bytes, bytesDown: this.down.bytes }, this);
  }

  /** End the session now (revocation, shutdown, errors): both sockets are destroyed. */
  close(reason: string): void {
    this.reason ??= reason;
    if (this.nativeId >= 0) return nativeClose(this.nativeId);
    this.client?.destroy();
    this.target?.destroy();
  }
}

/** The socket's file descriptor (Node keeps it on the libuv handle), or -1. */
export function socketFd(socket: net.Socket): number {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  return typeof fd === 'number' ? fd : -1;
}

/** Forget a socket whose descriptor the native relay now holds a duplicate of: closing ours sends nothing. */
export function detachSocket(socket: net.Socket): void {
  socket.removeAllListeners();
  socket.on('error', ignoreError);
  socket.destroy();
}
function ignoreError(): void {}

// Socket event handlers shared by every session: `this` is the socket that emitted.
function onClose(this: Tagged): void {
  this[DIRECTION]!.session.socketClosed();
}
function onError(this: Tagged, err: NodeJS.ErrnoException): void {
  const s = this[DIRECTION]!.session;
  const code = err.code ?? err.message;
  s.close(this === s.client ? `client-error: ${code}` : s.connected ? `target-error: ${code}` : `target-unreachable: ${code}`);
}
function onTargetConnect(this: Tagged): void {
  this[DIRECTION]!.session.connectedToTarget();
}
function onConnectTimeout(s: RelaySession): void {
  s.close('target-unreachable: connect timeout');
}
/** A FIN from one side: finish writing to the other, then send it the FIN. No byte is lost. */
function onEnd(this: Tagged): void {
  const s = this[DIRECTION]!.session;
  const client = this === s.client;
  s.reason ??= client ? 'client-closed' : 'target-closed';
  (client ? s.target! : s.client!).end();
  s.halfClosed();
}
const totalBytes = (s: RelaySession) => s.up.bytes + s.down.bytes;
const closeHalfClosed = (s: RelaySession) => s.close('closed'); // the reason of the side that ended first stays

function onDrain(this: Tagged): void {
  const s = this[DIRECTION]!.session;
  (this === s.client ? s.down : s.up).drained();
}
/** The fallback listener's sockets (no `onread`): their chunks are ours to keep. */
function onData(this: Tagged, chunk: Buffer): void {
  const s = this[DIRECTION]!.session;
  s.up.bytes += chunk.length;
  if (!s.target!.write(chunk)) this.pause();
}

/**
 * A TCP listener whose accepted sockets read through `onread` like the target side. Node 20's
 * `net.Server` cannot give accepted sockets `onread`, so the listening handle's connection callback
 * is replaced: each accepted handle is wrapped in a `net.Socket` created with `onread` and
 * `allowHalfOpen`, paused until the grant check has passed. This leans on `server._handle`, stable
 * since Node 0.x; if it is missing (another runtime) the plain 'connection' event is used instead,
 * with the copy that implies. `onSocket` gets the server, so one function can serve every listener
 * (a listener per grant: no closure of its own).
 */
export function listenWithOnread(server: net.Server, onSocket: Acceptor): void {
  (server as Listener)[ACCEPT] = onSocket;
  server.once('listening', onListening);
}

export type Acceptor = (server: net.Server, socket: net.Socket, session: RelaySession) => void;
const ACCEPT = Symbol('stagedoor.accept');
const SERVER = Symbol('stagedoor.server');
type Listener = net.Server & { [ACCEPT]?: Acceptor };
interface ListenHandle {
  onconnection?: (err: number, h: unknown) => void;
  [SERVER]?: Listener;
}

function onListening(this: Listener): void {
  const handle = (this as unknown as { _handle?: ListenHandle })._handle;
  if (!handle || typeof handle.onconnection !== 'function') {
    this.on('connection', onPlainConnection);
    return;
  }
  handle[SERVER] = this;
  handle.onconnection = onConnection;
}

function onPlainConnection(this: Listener, socket: net.Socket): void {
  const session = new RelaySession(false);
  session.adopt(socket);
  this[ACCEPT]!(this, socket, session);
}

function onConnection(this: ListenHandle, err: number, clientHandle: unknown): void {
  if (err || !clientHandle) return;
  const server = this[SERVER]!;
  const session = new RelaySession();
  const socket = new net.Socket({ handle: clientHandle, allowHalfOpen: true, pauseOnCreate: true, readable: true, writable: true, onread: onreadFor(session.up) } as net.SocketConstructorOpts);
  session.adopt(socket);
  (clientHandle as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
  (clientHandle as { setKeepAlive?: (on: boolean, delay: number) => void }).setKeepAlive?.(true, 60);
  server[ACCEPT]!(server, socket, session);
}
