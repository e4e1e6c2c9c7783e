import net from 'node:net';

/**
 * The broker's port is taken. Thrown before anything is written on a first start (the admin user
 * and its generated password), and with the variable to change, instead of a raw EADDRINUSE stack.
 */
export class PortInUseError extends Error {
  constructor(
    readonly host: string,
    readonly port: number,
  ) {
    super(`cannot listen on ${host}:${port}: the port is in use (another Stagedoor, or another program). Stop it, or choose a free port: PORT=${port === 65535 ? 8081 : port + 1} npm start (or PORT=… stagedoor dev)`);
    this.name = 'PortInUseError';
  }
}

/**
 * Bind the port once and let it go: a first start checks this before it creates the admin user,
 * so that a busy port never eats the generated password. Another program can still take the port
 * in between; `startBroker` maps that listen error to the same message.
 */
export async function assertPortFree(host: string, port: number): Promise<void> {
  if (port === 0) return;
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(err.code === 'EADDRINUSE' ? new PortInUseError(host, port) : err));
    server.listen({ host, port, exclusive: true }, resolve);
  });
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

export function isAddressInUse(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'EADDRINUSE';
}
