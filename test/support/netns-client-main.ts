/**
 * The client side of the namespace tests that need long-lived TCP sessions: run inside the client
 * namespace, it opens, uses and closes connections on command. The test talks to it over a Unix
 * socket (a file path, which network namespaces do not separate). One JSON request per line,
 * one JSON answer per line with the same `id`. Connections talk to an echo server.
 */
import fs from 'node:fs';
import net from 'node:net';

interface Conn {
  socket: net.Socket;
  sent: number;
  received: Buffer[];
  receivedBytes: number;
  closed: boolean;
  error: string | null;
  wake: () => void;
}

type Request = { id: number; op: 'open'; host: string; port: number; bind?: string; timeoutMs: number } | { id: number; op: 'echo'; conn: number; text: string; timeoutMs: number } | { id: number; op: 'end'; conn: number; timeoutMs: number } | { id: number; op: 'state'; conn: number };

const socketPath = process.argv[2]!;
const conns = new Map<number, Conn>();
let nextConn = 1;

/** Wait until `done()` holds, re-checking whenever the connection has news, or until the deadline. */
function until(c: Conn, done: () => boolean, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (done()) return resolve(true);
    const timer = setTimeout(() => {
      c.wake = () => undefined;
      resolve(false);
    }, timeoutMs);
    c.wake = () => {
      if (!done()) return;
      clearTimeout(timer);
      c.wake = () => undefined;
      resolve(true);
    };
  });
}

function view(id: number, c: Conn) {
  return { conn: id, closed: c.closed, error: c.error, sent: c.sent, received: c.receivedBytes };
}

async function echo(id: number, c: Conn, text: string, timeoutMs: number) {
  if (c.closed) return { ok: false, ...view(id, c) };
  c.socket.write(text);
  c.sent += Buffer.byteLength(text);
  const ok = await until(c, () => c.closed || c.receivedBytes >= c.sent, timeoutMs);
  const reply = Buffer.concat(c.received).subarray(-Buffer.byteLength(text)).toString();
  return { ok: ok && c.receivedBytes >= c.sent, reply, ...view(id, c) };
}

async function handle(req: Request): Promise<Record<string, unknown>> {
  switch (req.op) {
    case 'open': {
      const id = nextConn++;
      const socket = net.connect({ host: req.host, port: req.port, localAddress: req.bind });
      const c: Conn = { socket, sent: 0, received: [], receivedBytes: 0, closed: false, error: null, wake: () => undefined };
      conns.set(id, c);
      socket.on('data', (d) => {
        c.received.push(d);
        c.receivedBytes += d.length;
        c.wake();
      });
      socket.on('error', (err: NodeJS.ErrnoException) => {
        c.error = err.code ?? err.message;
      });
      socket.on('close', () => {
        c.closed = true;
        c.wake();
      });
      const connected = await new Promise<boolean>((resolve) => {
        socket.once('connect', () => resolve(true));
        socket.once('close', () => resolve(false));
      });
      // The gateway accepts every TCP connection and then decides: a refused one is reset at once,
      // so only an echo through it says that the session is relayed.
      if (!connected) return { ok: false, ...view(id, c) };
      return echo(id, c, `hello ${id}\n`, req.timeoutMs);
    }
    case 'echo': {
      const c = conns.get(req.conn);
      return c ? echo(req.conn, c, req.text, req.timeoutMs) : { ok: false, error: 'no such connection' };
    }
    case 'end': {
      const c = conns.get(req.conn);
      if (!c) return { ok: false, error: 'no such connection' };
      c.socket.end();
      const ok = await until(c, () => c.closed, req.timeoutMs);
      return { ok, ...view(req.conn, c) };
    }
    case 'state': {
      const c = conns.get(req.conn);
      return c ? { ok: true, ...view(req.conn, c) } : { ok: false, error: 'no such connection' };
    }
  }
}

fs.rmSync(socketPath, { force: true });
net
  .createServer((control) => {
    let buf = '';
    control.setEncoding('utf8');
    control.on('data', (chunk: string) => {
      buf += chunk;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        const req = JSON.parse(line) as Request;
        void handle(req).then(
          (answer) => control.write(`${JSON.stringify({ id: req.id, ...answer })}\n`),
          (err: Error) => control.write(`${JSON.stringify({ id: req.id, ok: false, error: err.message })}\n`),
        );
      }
    });
    control.on('error', () => undefined);
  })
  .listen(socketPath, () => process.stdout.write('ready\n'));
