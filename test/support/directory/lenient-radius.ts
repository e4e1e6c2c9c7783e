import dgram from 'node:dgram';
import radius from 'radius';

export interface LenientRadius {
  host: string;
  port: number;
  /** Challenge answers accepted so far (each one an Access-Accept on the wire). */
  accepted(): number;
  close(): Promise<void>;
}

type RadiusPacket = ReturnType<typeof radius.decode>;

const STATE = Buffer.from('lenient-state-1');

/**
 * A RADIUS server on 127.0.0.1 that speaks the real protocol (RFC 2865 over UDP, the `radius`
 * package's codec: request decoding with the shared secret, Response Authenticator and
 * Message-Authenticator on the answers) and, like some push services, accepts the answer to its
 * challenge as often as it comes — FreeRADIUS happens to refuse a reused State, so it cannot show
 * what a broker does with several accepts for one challenge.
 *
 * `username` with `password` gets an Access-Challenge carrying a State; any request with that State
 * and `code` is accepted, every time. Those accepts are held until `holdUntil` of them have arrived,
 * so that many answers are all in flight at the broker at once.
 */
export async function startLenientRadius(opts: { secret: string; username: string; password: string; code: string; holdUntil: number }): Promise<LenientRadius> {
  const socket = dgram.createSocket('udp4');
  let accepted = 0;
  let held: { request: RadiusPacket; to: dgram.RemoteInfo }[] = [];
  const seen = new Set<string>();
  const answer = (request: RadiusPacket, to: dgram.RemoteInfo, code: string, attributes: [string, string | Buffer][] = []) => {
    const reply = radius.encode_response({ packet: request, code, secret: opts.secret, attributes });
    socket.send(reply, to.port, to.address);
  };
  socket.on('message', (msg, from) => {
    let request: RadiusPacket;
    try {
      request = radius.decode({ packet: msg, secret: opts.secret });
    } catch {
      return; // not ours, or a wrong secret: drop it as real servers do
    }
    // A retransmission is the same request again (same source and identifier): answered once.
    const key = `${from.address}:${from.port}:${request.identifier}`;
    if (seen.has(key)) return;
    seen.add(key);
    const a = request.attributes;
    const state = a.State as Buffer | undefined;
    if (a['User-Name'] !== opts.username) return answer(request, from, 'Access-Reject');
    if (!state) {
      if (a['User-Password'] !== opts.password) return answer(request, from, 'Access-Reject');
      return answer(request, from, 'Access-Challenge', [
        ['State', STATE],
        ['Reply-Message', 'Enter the code we sent you'],
      ]);
    }
    if (!STATE.equals(state) || a['User-Password'] !== opts.code) return answer(request, from, 'Access-Reject');
    held.push({ request, to: from });
    if (held.length < opts.holdUntil) return;
    for (const h of held) {
      accepted++;
      answer(h.request, h.to, 'Access-Accept');
    }
    held = [];
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => resolve());
  });
  return {
    host: '127.0.0.1',
    port: socket.address().port,
    accepted: () => accepted,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}
