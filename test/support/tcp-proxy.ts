import net from 'node:net';

export interface TcpProxy {
  port: number;
  /** Where new connections go now. */
  target: { host: string; port: number };
  /** Send new connections elsewhere (a failover's endpoint switching to the promoted standby). */
  retarget(target: { host: string; port: number }): void;
  /** Connections open through the proxy now. */
  readonly open: number;
  close(): Promise<void>;
}

/**
 * A TCP proxy on loopback, standing in for a database endpoint that moves on failover (Aurora's
 * cluster endpoint): clients dial the proxy, the proxy dials the current target. When either side
 * of a pair ends, the other is reset, as a client of a crashed server sees it.
 */
export async function startTcpProxy(initial: { host: string; port: number }): Promise<TcpProxy> {
  let target = initial;
  const pairs = new Set<net.Socket>();
  const server = net.createServer((down) => {
    const up = net.connect(target.port, target.host);
    pairs.add(down);
    const end = () => {
      pairs.delete(down);
      if (!down.destroyed) down.resetAndDestroy();
      if (!up.destroyed) up.resetAndDestroy();
    };
    for (const s of [down, up]) {
      s.on('error', end);
      s.on('close', end);
    }
    down.pipe(up);
    up.pipe(down);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    get target() {
      return target;
    },
    retarget: (t) => {
      target = t;
    },
    get open() {
      return pairs.size;
    },
    close: () =>
      new Promise((resolve) => {
        for (const s of pairs) s.resetAndDestroy();
        server.close(() => resolve());
      }),
  };
}
