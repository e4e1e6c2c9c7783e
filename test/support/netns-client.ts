import net from 'node:net';
import path from 'node:path';
import type { PrivateNetwork } from './netns.ts';
import { REPO_ROOT } from './processes.ts';
import { waitFor } from './ports.ts';

export interface ClientConnection {
  conn: number;
  ok: boolean;
  closed: boolean;
  /** The socket error that ended it (`ECONNRESET` for a reset), or null. */
  error: string | null;
  /** Bytes the client sent and received on it so far. */
  sent: number;
  received: number;
  reply?: string;
}

export interface NetnsClient {
  /** Connect (from `bind`, default the namespace's first address) and prove the relay with an echo. */
  open(host: string, port: number, bind?: string): Promise<ClientConnection>;
  echo(conn: number, text: string): Promise<ClientConnection>;
  /** Close the client's side and wait for the connection to end. */
  end(conn: number): Promise<ClientConnection>;
  state(conn: number): Promise<ClientConnection>;
  close(): void;
}

/** Start the client of `netns-client-main.ts` in the client namespace and connect to its control socket. */
export async function startNetnsClient(network: PrivateNetwork, dir: string): Promise<NetnsClient> {
  const socketPath = path.join(dir, 'client.sock');
  const proc = network.spawn(network.ns.client, process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'test/support/netns-client-main.ts'), socketPath]);
  await waitFor('the namespace client to listen', () => {
    if (proc.proc.exitCode !== null) throw new Error(`the namespace client exited: ${proc.stderr.join('\n')}`);
    return proc.stdout.includes('ready');
  }, 30_000, 50);
  const control = net.connect(socketPath);
  await new Promise<void>((resolve, reject) => control.once('connect', resolve).once('error', reject));
  const pending = new Map<number, (answer: ClientConnection) => void>();
  let buf = '';
  control.setEncoding('utf8');
  control.on('data', (chunk: string) => {
    buf += chunk;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const answer = JSON.parse(buf.slice(0, i)) as ClientConnection & { id: number };
      buf = buf.slice(i + 1);
      pending.get(answer.id)?.(answer);
      pending.delete(answer.id);
    }
  });
  let nextId = 1;
  const ask = (req: Record<string, unknown>) =>
    new Promise<ClientConnection>((resolve) => {
      const id = nextId++;
      pending.set(id, resolve);
      control.write(`${JSON.stringify({ id, timeoutMs: 10_000, ...req })}\n`);
    });
  return {
    open: (host, port, bind) => ask({ op: 'open', host, port, bind: bind ?? network.addr.client }),
    echo: (conn, text) => ask({ op: 'echo', conn, text }),
    end: (conn) => ask({ op: 'end', conn }),
    state: (conn) => ask({ op: 'state', conn }),
    close: () => {
      control.destroy();
      void proc.stop('SIGKILL');
    },
  };
}
