import net from 'node:net';
import tls from 'node:tls';
import { TUNNEL_CLOSE, TUNNEL_NATIVE_ALPN, TUNNEL_NATIVE_MAX_LINE } from '@stagedoor/contract';
import type { Log } from '../log.ts';
import { nativeAdd, nativeBytes, nativeClose, nativeEndReason, type NativeEnd } from '../native-relay.ts';
import { detachSocket, socketFd } from '../relay.ts';
import { REFUSAL_MESSAGES, type Admit, type Admitted } from './admission.ts';
import { RecordTap } from './record-tap.ts';
import { readFirstMessage } from './tunnel-first-message.ts';
import type { TlsCertificate } from './tls-certificate.ts';
import { applicationRecords, NATIVE_SUITES, nativeTlsParams, readKeylogLine, trafficKeys, type TrafficSecrets } from './tls13-keys.ts';

export interface NativeTunnelOptions {
  certificate: TlsCertificate;
  admit: Admit;
  log: Log;
  /** Hand admitted sessions to the native relay (else Node relays the TLS stream itself). */
  nativeRelay: boolean;
  handshakeTimeoutMs: number;
  firstMessageTimeoutMs: number;
  connectTimeoutMs: number;
}

const OK_LINE = Buffer.from('{"ok":true}\n');
const SUITES = Object.keys(NATIVE_SUITES).join(':');

/**
 * The HTTPS tunnel's native mode (ADR 0032; the wire in packages/contract/src/tunnel.ts): Node's TLS
 * does the handshake over a RecordTap and reads the token line; once the grant is admitted and the
 * workstation answers, the descriptor goes to the native relay with the application traffic keys, and
 * the relay threads seal and open the records from there — the bytes never pass through JavaScript
 * again, like port forward. Where that cannot be (no native relay, a client that did not wait for the
 * answer, records that do not add up) Node relays the TLS stream itself; the client sees no difference.
 */
export class NativeTunnelMode {
  #context: tls.SecureContext;
  readonly #sockets = new Set<tls.TLSSocket>();
  readonly #unsubscribe: () => void;

  constructor(private readonly opts: NativeTunnelOptions) {
    const context = (pair: { key: string | Buffer; cert: string | Buffer }) => tls.createSecureContext({ ...pair, minVersion: 'TLSv1.3', ciphers: SUITES });
    this.#context = context(opts.certificate.pair);
    this.#unsubscribe = opts.certificate.onChange((pair) => {
      this.#context = context(pair);
    });
  }

  close(): void {
    this.#unsubscribe();
    for (const s of this.#sockets) s.destroy();
  }

  /** A connection whose ClientHello (`head`, already read) offers the native ALPN protocol. */
  accept(socket: net.Socket, head: Buffer, client: string): void {
    const tap = new RecordTap(socket, head);
    const secure = new tls.TLSSocket(tap as unknown as net.Socket, { isServer: true, secureContext: this.#context, ALPNProtocols: [TUNNEL_NATIVE_ALPN] });
    const secrets: TrafficSecrets = { client: null, server: null };
    secure.on('keylog', (line: Buffer) => readKeylogLine(line, secrets));
    secure.on('error', () => secure.destroy());
    this.#sockets.add(secure);
    secure.once('close', () => this.#sockets.delete(secure));
    // Plain fields, not a child logger: an idle session is counted in bytes (docs/gateway.md).
    const log = this.opts.log;
    const at = { listener: 'tunnel', mode: 'native', client };
    const timer = setTimeout(() => {
      log.info(at, 'tunnel refused: no grant token in time');
      secure.destroy();
    }, this.opts.handshakeTimeoutMs + this.opts.firstMessageTimeoutMs);
    secure.once('close', () => clearTimeout(timer));
    secure.once('secure', () => {
      if (secure.alpnProtocol !== TUNNEL_NATIVE_ALPN) return void secure.destroy();
      readLine(secure, (line) => {
        clearTimeout(timer);
        const token = line === null ? null : tokenOf(line);
        if (token === null) {
          log.info(at, 'tunnel refused: the first line was not a token (or more came before the answer)');
          return answerRefusal(secure, TUNNEL_CLOSE.badRequest, REFUSAL_MESSAGES['bad-request']);
        }
        void this.#admit({ secure, tap, secrets, client, token, at });
      });
    });
  }

  async #admit(s: { secure: tls.TLSSocket; tap: RecordTap; secrets: TrafficSecrets; client: string; token: string; at: Record<string, string> }): Promise<void> {
    const { secure } = s;
    const log = this.opts.log;
    let r;
    try {
      r = await this.opts.admit('tunnel', s.token, s.client);
    } catch (err) {
      log.error({ ...s.at, err }, 'tunnel admission failed');
      return answerRefusal(secure, TUNNEL_CLOSE.refused, REFUSAL_MESSAGES['claim-timeout']);
    }
    if (!r.ok) return answerRefusal(secure, TUNNEL_CLOSE.refused, r.message);
    const admitted = r;
    if (secure.destroyed) return admitted.ended({ reason: 'client-closed', bytesUp: 0, bytesDown: 0 });
    const session = new NativeTunnelSession(admitted, log, s.client);
    session.start(s, this.opts.connectTimeoutMs, this.opts.nativeRelay);
  }
}

/** One admitted native-mode session: connect, answer, then the relay threads (or Node) move the bytes. */
class NativeTunnelSession {
  #nativeId = -1;
  #secure: tls.TLSSocket | null = null;
  #target: net.Socket | null = null;
  #reason: string | null = null;
  #bytesUp = 0;
  #bytesDown = 0;
  #reported = false;

  constructor(
    private readonly admitted: Admitted,
    private readonly log: Log,
    private readonly client: string,
  ) {}

  /** The log fields of the session, made when a line is written (an idle session keeps no object for them). */
  #at(): { listener: 'tunnel'; mode: 'native'; client: string; grant: string } {
    return { listener: 'tunnel', mode: 'native', client: this.client, grant: this.admitted.grantId };
  }

  start(s: { secure: tls.TLSSocket; tap: RecordTap; secrets: TrafficSecrets }, connectTimeoutMs: number, native: boolean): void {
    const { secure } = s;
    const admitted = this.admitted;
    this.#secure = secure;
    this.log.info({ ...this.#at(), target: `${admitted.target.host}:${admitted.target.port}` }, 'tunnel session started');
    this.#watch();
    const target = (this.#target = net.connect({ host: admitted.target.host, port: admitted.target.port, noDelay: true, keepAlive: true, keepAliveInitialDelay: 60_000 }));
    const connectTimer = setTimeout(() => target.destroy(new Error('connect timeout')), connectTimeoutMs);
    connectTimer.unref();
    let connected = false;
    target.once('connect', () => {
      clearTimeout(connectTimer);
      connected = true;
      if (secure.destroyed) return void target.destroy();
      if (native && this.#handOff(s, target)) return;
      secure.write(OK_LINE);
      this.#relayHere(secure, target);
    });
    target.on('error', (err: NodeJS.ErrnoException) => {
      const code = err.code ?? err.message;
      this.#reason ??= connected ? `target-error: ${code}` : `target-unreachable: ${code}`;
      if (!connected) answerRefusal(secure, TUNNEL_CLOSE.targetUnreachable, 'the desktop did not accept the connection: try again shortly');
    });
    target.once('close', () => this.#closed());
    secure.once('close', () => this.#closed());
  }

  /**
   * What the admitter keeps for the session's life (its byte counts, how to close it): closures over
   * the session alone. Made in a method of their own, or they would share the connect step's scope and
   * keep the handshake's sockets, records and secrets alive for as long as the session lasts.
   */
  #watch(): void {
    this.admitted.countBytes(() => this.#counts());
    this.admitted.onClose((why) => this.#close(why.startsWith('revoked') ? why : `revoked: ${why}`));
  }

  #counts(): { bytesUp: number; bytesDown: number } {
    if (this.#nativeId < 0) return { bytesUp: this.#bytesUp, bytesDown: this.#bytesDown };
    const [bytesUp, bytesDown] = nativeBytes(this.#nativeId);
    return { bytesUp, bytesDown };
  }

  /** Give the TLS connection (with its keys) and the workstation's socket to the relay threads. */
  #handOff(s: { secure: tls.TLSSocket; tap: RecordTap; secrets: TrafficSecrets }, target: net.Socket): boolean {
    const { secure, tap, secrets } = s;
    const suite = NATIVE_SUITES[secure.getCipher().standardName];
    const clientFd = socketFd(tap.socket);
    const targetFd = socketFd(target);
    if (!suite || !secrets.client || !secrets.server || clientFd < 0 || targetFd < 0 || !tap.quiet || secure.readableLength > 0 || target.readableLength > 0) return false;
    const clientKeys = trafficKeys(suite, secrets.client);
    const serverKeys = trafficKeys(suite, secrets.server);
    const clientSeq = applicationRecords(suite, clientKeys, tap.fromClient.records);
    const serverSeq = applicationRecords(suite, serverKeys, tap.toClient.records);
    // The token line is the client's only application record so far: anything else, Node keeps it.
    if (clientSeq === null || serverSeq === null || clientSeq < 1) return false;
    try {
      this.#nativeId = nativeAdd(clientFd, targetFd, undefined, this, { params: nativeTlsParams(suite, clientKeys, clientSeq, serverKeys, serverSeq), hello: OK_LINE });
    } catch (err) {
      this.log.warn({ ...this.#at(), err }, 'tunnel: the native relay did not take the session; relaying it here');
      return false;
    }
    tap.handOff();
    secure.destroy(); // its close finds the session native: nothing to report until the relay's end
    detachSocket(tap.socket);
    detachSocket(target);
    this.#secure = this.#target = null;
    return true;
  }

  /** @internal the relay threads finished it. */
  nativeEnded(end: NativeEnd): void {
    this.#nativeId = -1;
    this.#reason ??= nativeEndReason(end);
    this.#bytesUp = end.bytesUp;
    this.#bytesDown = end.bytesDown;
    this.#report();
  }

  /** Node relays the TLS stream (no native relay, or the handoff's conditions did not hold). */
  #relayHere(secure: tls.TLSSocket, target: net.Socket): void {
    secure.on('data', (chunk: Buffer) => {
      this.#bytesUp += chunk.length;
      if (!target.write(chunk)) secure.pause();
    });
    target.on('drain', () => secure.resume());
    target.on('data', (chunk: Buffer) => {
      this.#bytesDown += chunk.length;
      if (!secure.write(chunk)) target.pause();
    });
    secure.on('drain', () => target.resume());
    secure.on('end', () => {
      this.#reason ??= 'client-closed';
      target.end();
    });
    target.on('end', () => {
      this.#reason ??= 'target-closed';
      secure.end();
    });
    secure.resume();
  }

  #close(reason: string): void {
    this.#reason ??= reason;
    if (this.#nativeId >= 0) return nativeClose(this.#nativeId);
    this.#secure?.destroy();
    this.#target?.destroy();
  }

  /** One side closed (Node relaying): the other finishes what it was sent, then the session is reported. */
  #closed(): void {
    if (this.#nativeId >= 0 || this.#reported) return;
    for (const side of [this.#secure, this.#target]) {
      if (!side || side.destroyed) continue;
      side.end();
      setTimeout(() => side.destroy(), 5000).unref();
      return;
    }
    this.#report();
  }

  #report(): void {
    if (this.#reported) return;
    this.#reported = true;
    const outcome = { reason: this.#reason ?? 'closed', bytesUp: this.#bytesUp, bytesDown: this.#bytesDown };
    this.admitted.ended(outcome);
    this.log.info({ ...this.#at(), ...outcome }, 'tunnel session ended');
  }
}

/** The first line (without its newline), or null: too long, not text, or followed by bytes sent before the answer. */
function readLine(secure: tls.TLSSocket, done: (line: string | null) => void): void {
  let got = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    got = Buffer.concat([got, chunk]);
    const end = got.indexOf(10);
    if (end < 0 && got.length < TUNNEL_NATIVE_MAX_LINE) return;
    secure.removeListener('data', onData);
    secure.pause();
    done(end < 0 || end + 1 !== got.length ? null : got.subarray(0, end).toString('utf8'));
  };
  secure.on('data', onData);
}

/** The token of a first line in `tcp` mode (the native mode carries nothing else), or null. */
function tokenOf(line: string): string | null {
  const first = readFirstMessage(Buffer.from(line, 'utf8'));
  return first?.mode === 'tcp' ? first.token : null;
}

/** The refusal line, then the end of the connection (what the client shows the user). */
function answerRefusal(secure: tls.TLSSocket, code: number, message: string): void {
  if (secure.destroyed) return;
  secure.end(`${JSON.stringify({ ok: false, code, message })}\n`);
  setTimeout(() => secure.destroy(), 2000).unref();
}
