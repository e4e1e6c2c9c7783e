import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The native relay (apps/gateway/native/: relay_thread.c and binding.c, ADR 0011): once a session's two sockets are
 * connected, JavaScript hands their descriptors to relay threads that move the bytes with epoll and
 * splice, and hears back only when the session ends. This module loads it and routes its end reports.
 */
interface NativeModule {
  init(onEnded: () => void, threads: number): void;
  add(clientFd: number, targetFd: number, initial?: Buffer, tlsParams?: Buffer, hello?: Buffer, sshParams?: Buffer): number;
  /** `parting`: a WebSocket session's close frame, sent (best effort) before the end. */
  close(id: number, parting?: Buffer): void;
  bytes(id: number, out: Float64Array): void;
  takeEnded(): number[];
  stats(): { live: number; threads: number };
  /** How long a half-closed session may stay silent (linger.c); 0: no bound. */
  halfClose(seconds: number): void;
  /** Tests only: the next `skip` allocations (epoll_ctl calls) of the relay succeed, the `fail` after them fail. */
  injectFaults(kind: 'alloc' | 'epoll_ctl', skip: number, fail: number): void;
}

/** How the relay thread says a session ended (the C `end_kind`). */
export const END_CLOSED = 0;
export const END_ERROR = 1;
export const END_REQUESTED = 2;

/** The side of an `END_ERROR` that was the relay's own (an allocation or epoll_ctl failed), not a socket's. */
export const SIDE_RELAY = 2;

/** What the owner of a native session hears at its end. `side`: 0 client, 1 target, 2 the relay, -1 none. */
export interface NativeEnd {
  kind: number;
  side: number;
  errno: number;
  bytesUp: number;
  bytesDown: number;
}
/** Why a native session ended, in the words of the session reports; null for a close JavaScript asked for (its owner knows why). */
export function nativeEndReason(end: NativeEnd): string | null {
  if (end.kind === END_ERROR) return `${end.side === 0 ? 'client' : end.side === SIDE_RELAY ? 'relay' : 'target'}-error: ${errnoName(end.errno)}`;
  if (end.kind === END_REQUESTED) return null;
  return end.side === 0 ? 'client-closed' : end.side === 1 ? 'target-closed' : 'closed';
}

export interface NativeOwner {
  nativeEnded(end: NativeEnd): void;
}

export type RelayEngineChoice = 'auto' | 'native' | 'js';

/** The relay settings of a gateway process (config.ts: STAGEDOOR_GATEWAY_RELAY, _RELAY_THREADS, _HALF_CLOSE_SECONDS). */
export interface RelaySettings {
  engine: RelayEngineChoice;
  threads: number;
  halfCloseSeconds?: number;
}

/**
 * After one side of a session ended its sending (FIN, close_notify), the session ends once nothing has
 * moved the other way for this long (HAProxy's `timeout client-fin` / `server-fin`): a side that keeps a
 * finished session open and silent would keep the desktop counted as in use. Both engines keep it.
 */
export const DEFAULT_HALF_CLOSE_SECONDS = 60;
let halfCloseSeconds = DEFAULT_HALF_CLOSE_SECONDS;

/** Process-wide, like the relay threads; sessions half-closed from then on take it. 0: no bound. */
export function setHalfCloseSeconds(seconds: number): void {
  if (!Number.isInteger(seconds) || seconds < 0) throw new RangeError(`the half-close bound must be a whole number of seconds ≥ 0 (got ${seconds})`);
  halfCloseSeconds = seconds;
  if (started) mod!.halfClose(seconds);
}

/** The half-close bound for the JavaScript relays, in ms (0: none). */
export function halfCloseMs(): number {
  return halfCloseSeconds * 1000;
}

const BINARY = path.join(path.dirname(fileURLToPath(import.meta.url)), '../native/build/splice_relay.node');

let mod: NativeModule | null = null;
let loadError: string | null = null;
const owners = new Map<number, NativeOwner>();
const scratch = new Float64Array(2);

function load(): NativeModule | null {
  if (mod || loadError) return mod;
  try {
    mod = createRequire(import.meta.url)(BINARY) as NativeModule;
  } catch (err) {
    loadError = `${(err as Error).message.split('\n')[0]} (build it with: node apps/gateway/native/build.mjs)`;
  }
  return mod;
}

function onEnded(): void {
  let r: number[];
  try {
    r = mod!.takeEnded();
  } catch {
    // The answer could not be built (out of memory): the ends stay queued; ask again soon.
    setTimeout(onEnded, 100).unref();
    return;
  }
  for (let k = 0; k < r.length; k += 6) {
    const owner = owners.get(r[k]!);
    if (!owner) continue;
    owners.delete(r[k]!);
    owner.nativeEnded({ kind: r[k + 1]!, side: r[k + 2]!, errno: r[k + 3]!, bytesUp: r[k + 4]!, bytesDown: r[k + 5]! });
  }
}

let started: { threads: number } | null = null;

/**
 * Choose a relay engine. `auto` takes the native relay when it is built and says why not otherwise;
 * `native` insists on it. The relay threads start on the first call that takes it (their number is
 * fixed then); `js` keeps a caller on the JavaScript relay (tests and benchmarks compare the two).
 * `halfClose`, when given, sets the half-close bound (setHalfCloseSeconds) for either engine.
 */
export function useRelayEngine(choice: RelayEngineChoice, threads = 1, halfClose?: number): { engine: 'native' | 'js'; reason?: string } {
  if (halfClose !== undefined) setHalfCloseSeconds(halfClose);
  if (choice === 'js') return { engine: 'js' };
  if (started) return { engine: 'native' };
  const m = load();
  if (!m) {
    if (choice === 'native') throw new Error(`STAGEDOOR_GATEWAY_RELAY=native, but the native relay cannot be loaded: ${loadError}`);
    return { engine: 'js', reason: loadError! };
  }
  try {
    m.init(onEnded, threads);
  } catch (err) {
    loadError = `the relay threads did not start: ${(err as Error).message}`;
    mod = null;
    if (choice === 'native') throw new Error(`STAGEDOOR_GATEWAY_RELAY=native, but ${loadError}`, { cause: err });
    return { engine: 'js', reason: loadError };
  }
  started = { threads };
  m.halfClose(halfCloseSeconds);
  return { engine: 'native' };
}

/**
 * Hand two connected sockets' descriptors to the relay threads; the caller then closes its own. With
 * `tls` the client side speaks TLS 1.3 records (tls13-keys.ts `nativeTlsParams`), and `hello` is sealed
 * as the first record to the client. With `ssh` the client side speaks SSH packets (ssh2-keys.ts
 * `nativeSshParams`): the relay confirms the channel and moves its data.
 */
export function nativeAdd(clientFd: number, targetFd: number, initial: Buffer | undefined, owner: NativeOwner, tls?: { params: Buffer; hello: Buffer }, ssh?: Buffer): number {
  const id = mod!.add(clientFd, targetFd, initial, tls?.params, tls?.hello, ssh);
  owners.set(id, owner);
  return id;
}

/** End a session now; a WebSocket session's client first reads `parting` (a close frame, ws_relay.c). */
export function nativeClose(id: number, parting?: Buffer): void {
  mod!.close(id, parting);
}

/** Bytes read so far from the client and from the target. */
export function nativeBytes(id: number): [number, number] {
  mod!.bytes(id, scratch);
  return [scratch[0]!, scratch[1]!];
}

export function nativeStats(): { live: number; threads: number } | null {
  return started ? mod!.stats() : null;
}

/** Tests only (apps/gateway/test/native-faults.test.ts): make the relay's allocations or epoll_ctl calls fail. */
export function nativeInjectFaults(kind: 'alloc' | 'epoll_ctl', skip: number, fail: number): void {
  if (!started) throw new Error('the native relay is not running');
  mod!.injectFaults(kind, skip, fail);
}

const errnoNames = new Map<number, string>(Object.entries(os.constants.errno).map(([name, n]) => [n, name]));
/** `ECONNRESET` for 104, as Node names socket errors. */
export function errnoName(n: number): string {
  return errnoNames.get(n) ?? `errno ${n}`;
}
