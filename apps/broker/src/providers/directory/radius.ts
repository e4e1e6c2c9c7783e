import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import radius from 'radius';
import type { Logger } from 'pino';
import type { RadiusSettings } from '@stagedoor/contract';
import { UnavailableError } from '../../domain/errors.ts';
import type { MfaAnswer, MfaRequest, MfaVerifier } from '../../domain/identity/directory.ts';

const CODES = { 2: 'Access-Accept', 3: 'Access-Reject', 11: 'Access-Challenge' } as const;
const MESSAGE_AUTHENTICATOR = 80;

export interface RadiusClientOptions {
  /** The auth server's name, for messages and logs. */
  name: string;
  settings: RadiusSettings;
  secret: string;
  log: Logger;
}

type Exchange = { kind: 'answer'; packet: Buffer } | { kind: 'timeout' } | { kind: 'refused' } | { kind: 'error'; message: string };

/**
 * A RADIUS client (RFC 2865, PAP) over node:dgram. Requests carry a Message-Authenticator; answers are
 * believed only when both their Response Authenticator and Message-Authenticator prove the shared
 * secret. Servers are tried in order, each `retries + 1` times; a challenge's answer goes back to the
 * server that sent the challenge.
 */
export class RadiusClient implements MfaVerifier {
  readonly #o: RadiusClientOptions;

  constructor(options: RadiusClientOptions) {
    this.#o = options;
  }

  async check(request: MfaRequest): Promise<MfaAnswer> {
    const servers = request.server ? [parseServer(request.server)] : this.#o.settings.servers.map((s) => ({ host: s.host, port: s.port }));
    const attributes: unknown[] = [
      ['User-Name', request.username],
      ['User-Password', request.response],
      ['NAS-Identifier', this.#o.settings.nasIdentifier],
    ];
    if (request.state) attributes.push(['State', Buffer.from(request.state, 'base64')]);
    return this.#send(servers, attributes);
  }

  test(username = 'stagedoor-connection-test'): Promise<MfaAnswer> {
    return this.check({ username, response: randomBytes(12).toString('base64url') });
  }

  async #send(servers: { host: string; port: number }[], attributes: unknown[]): Promise<MfaAnswer> {
    const { name, settings, secret, log } = this.#o;
    const failures: string[] = [];
    for (const server of servers) {
      const where = formatServer(server);
      const identifier = randomBytes(1)[0]!;
      // A fresh copy each time: `radius.encode` appends the Message-Authenticator to the array it is given.
      const packet = radius.encode({ code: 'Access-Request', secret, identifier, attributes: [...attributes], add_message_authenticator: true });
      let outcome: Exchange = { kind: 'timeout' };
      for (let attempt = 0; attempt <= settings.retries; attempt++) {
        // A retransmission is the same packet: same identifier and authenticator (RFC 5080 §2.2.1).
        outcome = await exchange(server, packet, settings.timeoutMs);
        if (outcome.kind !== 'timeout') break;
      }
      if (outcome.kind === 'answer') {
        const reply = outcome.packet;
        const verdict = authentic(packet, reply, secret, settings.requireMessageAuthenticator !== false);
        if (verdict === 'no-message-authenticator') {
          throw new UnavailableError(
            `RADIUS server "${name}" (${where}) answered without a Message-Authenticator, which this auth server requires (BlastRADIUS, CVE-2024-3596): update the RADIUS server (FreeRADIUS 3.2.5 or later sends one) or turn requireMessageAuthenticator off`,
            { authServer: name, server: where },
          );
        }
        if (verdict !== 'ok') {
          throw new UnavailableError(
            `RADIUS server "${name}" (${where}) answered with a Response Authenticator or Message-Authenticator that does not match: the shared secret configured in Stagedoor differs from the server's`,
            { authServer: name, server: where },
          );
        }
        return toAnswer(reply, where);
      }
      const why =
        outcome.kind === 'refused'
          ? 'nothing listens there (port unreachable)'
          : outcome.kind === 'error'
            ? outcome.message
            : `no answer after ${settings.retries + 1} tries of ${settings.timeoutMs} ms${await this.#diagnoseSilence(server)}`;
      failures.push(`${where}: ${why}`);
      log.warn({ authServer: name, server: where, err: why }, 'RADIUS server failed; trying the next');
    }
    throw new UnavailableError(`RADIUS server "${name}" cannot be used, so nobody can sign in with it now: ${failures.join('; ')}`, { authServer: name, failures });
  }

  /**
   * Servers drop requests whose Message-Authenticator does not verify, so a wrong shared secret looks
   * like silence. One probe without that attribute (a made-up user, never a real credential) tells a
   * wrong secret from a dead server when the server still answers such requests; the answer is used
   * for this diagnosis only, never to sign anyone in.
   */
  async #diagnoseSilence(server: { host: string; port: number }): Promise<string> {
    const { secret, settings } = this.#o;
    const probe = radius.encode({
      code: 'Access-Request',
      secret,
      identifier: randomBytes(1)[0]!,
      attributes: [
        ['User-Name', 'stagedoor-secret-probe'],
        ['User-Password', randomBytes(12).toString('base64url')],
        ['NAS-Identifier', settings.nasIdentifier],
      ],
      add_message_authenticator: false,
    });
    const outcome = await exchange(server, probe, Math.min(settings.timeoutMs, 2000));
    if (outcome.kind === 'answer' && authentic(probe, outcome.packet, secret, false) !== 'ok') {
      return ' — it answers, but not with our shared secret: the shared secret configured in Stagedoor differs from the server\'s';
    }
    if (outcome.kind === 'answer') return ' — it answers requests without a Message-Authenticator only; check its client settings';
    return ' (down or unreachable, or it drops our requests because the shared secret differs)';
  }
}

/** Send one datagram and wait for the answer with the same identifier, an ICMP refusal, or the timeout. */
function exchange(server: { host: string; port: number }, packet: Buffer, timeoutMs: number): Promise<Exchange> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket(net.isIPv6(server.host) ? 'udp6' : 'udp4');
    let done = false;
    const finish = (result: Exchange) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.close();
      resolve(result);
    };
    const timer = setTimeout(() => finish({ kind: 'timeout' }), timeoutMs);
    socket.on('error', (err: NodeJS.ErrnoException) => finish(err.code === 'ECONNREFUSED' ? { kind: 'refused' } : { kind: 'error', message: `${err.code ?? ''} ${err.message}`.trim() }));
    socket.on('message', (msg) => {
      // Answers to other requests (or junk) are ignored; only our identifier ends the wait.
      if (msg.length >= 20 && msg[1] === packet[1]) finish({ kind: 'answer', packet: msg });
    });
    // A connected socket turns an ICMP port-unreachable into ECONNREFUSED instead of a silent timeout.
    socket.connect(server.port, server.host, () => socket.send(packet));
  });
}

/**
 * RFC 2865 §3 Response Authenticator and the RFC 3579 §3.2 Message-Authenticator, compared in
 * constant time on the raw bytes (the `radius` package compares them as UTF-8 strings, which loses
 * bits). An answer without a Message-Authenticator is what a BlastRADIUS forgery (CVE-2024-3596)
 * looks like, and also what servers before the fixes (FreeRADIUS < 3.2.5) send: refused when
 * `requireMessageAuthenticator` (the default for new auth servers), accepted otherwise.
 */
function authentic(request: Buffer, reply: Buffer, secret: string, requireMessageAuthenticator: boolean): 'ok' | 'mismatch' | 'no-message-authenticator' {
  const length = reply.readUInt16BE(2);
  if (length < 20 || length > reply.length || !(reply[0]! in CODES)) return 'mismatch';
  const body = Buffer.from(reply.subarray(0, length));
  const got = Buffer.from(body.subarray(4, 20));
  request.copy(body, 4, 4, 20);
  const expected = createHash('md5').update(body).update(secret).digest();
  if (!timingSafeEqual(got, expected)) return 'mismatch';
  // With the Request Authenticator in place, check the Message-Authenticator if there is one.
  let offset = 20;
  while (offset + 2 <= length) {
    const type = body[offset]!;
    const len = body[offset + 1]!;
    if (len < 2 || offset + len > length) return 'mismatch';
    if (type === MESSAGE_AUTHENTICATOR) {
      if (len !== 18) return 'mismatch';
      const sent = Buffer.from(body.subarray(offset + 2, offset + 18));
      body.fill(0, offset + 2, offset + 18);
      return timingSafeEqual(sent, createHmac('md5', secret).update(body).digest()) ? 'ok' : 'mismatch';
    }
    offset += len;
  }
  return requireMessageAuthenticator ? 'no-message-authenticator' : 'ok';
}

function toAnswer(reply: Buffer, server: string): MfaAnswer {
  const decoded = radius.decode_without_secret({ packet: reply });
  const raw = decoded.attributes['Reply-Message'] as string | string[] | undefined;
  const message = raw === undefined ? null : [raw].flat().join('\n');
  const code = CODES[reply[0] as keyof typeof CODES];
  if (code === 'Access-Accept') return { kind: 'accept', server, message };
  if (code === 'Access-Reject') return { kind: 'reject', server, message };
  const state = decoded.attributes.State as Buffer | undefined;
  return { kind: 'challenge', server, message, state: state ? Buffer.from(state).toString('base64') : null };
}

function formatServer(s: { host: string; port: number }): string {
  return net.isIPv6(s.host) ? `[${s.host}]:${s.port}` : `${s.host}:${s.port}`;
}

function parseServer(s: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(s);
  if (!m) throw new Error(`bad RADIUS server address ${s}`);
  return { host: m[1]!, port: Number(m[2]) };
}
