import { freePort, waitFor } from './ports.ts';
import { spawnStagedoor, type Spawned } from './processes.ts';

export interface BrokerNode {
  name: string;
  base: string;
  proc: Spawned;
}

/**
 * Start `stagedoor broker` processes on one database, all at once (migrations and the admin
 * bootstrap must cope with the race), and wait until each answers /readyz. Each gets a free port
 * and its name as STAGEDOOR_NODE_ID; a node that fails to start reports its stderr.
 */
export async function startBrokerNodes(names: string[], env: Record<string, string | undefined>, opts: { host?: string } = {}): Promise<BrokerNode[]> {
  const nodes: BrokerNode[] = [];
  const host = opts.host ?? '127.0.0.1';
  for (const name of names) {
    const port = await freePort(host);
    const proc = spawnStagedoor(['broker'], { PORT: String(port), STAGEDOOR_NODE_ID: name, STAGEDOOR_HOST: host, ...env });
    nodes.push({ name, base: `http://${host}:${port}`, proc });
  }
  await Promise.all(
    nodes.map((n) =>
      waitFor(`${n.name} ready`, async () => (await fetch(`${n.base}/readyz`)).status === 200, 60_000, 200).catch((err: Error) => {
        throw new Error(`${err.message}\n${n.proc.stderr.join('\n')}`);
      }),
    ),
  );
  return nodes;
}
