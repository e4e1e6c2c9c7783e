import { getProxyForUrl } from 'proxy-from-env';
import { CliError } from '../cli-error.ts';
import { clientCommandFor, normaliseFingerprint, openTunnel, type TunnelEvent } from '../tunnel-client.ts';

/** What the broker's answer carries for `--tunnel` (ADR 0017): where, the grant token, and the pin for self-signed gateways. */
export interface TunnelInstructions {
  url: string;
  token: string;
  certificateSha256: string | null;
}

/**
 * `stagedoor connect --tunnel`: a local port for the native client, open until Ctrl-C. The proxy comes
 * from HTTPS_PROXY/https_proxy (ALL_PROXY too) unless NO_PROXY names the gateway, as curl and git do;
 * proxy-from-env reads them by the same rules as those tools.
 */
export async function runTunnel(t: TunnelInstructions, opts: { protocol: string; localPort?: string; websocket?: boolean }): Promise<void> {
  const listenPort = opts.localPort === undefined ? 0 : Number(opts.localPort);
  if (!Number.isInteger(listenPort) || listenPort < 0 || listenPort > 65535) throw new CliError(`--local-port must be a port number (got ${opts.localPort})`);
  let certificateSha256: string | null;
  try {
    certificateSha256 = t.certificateSha256 ? normaliseFingerprint(t.certificateSha256) : null;
  } catch (err) {
    throw new CliError((err as Error).message);
  }
  const httpsUrl = t.url.replace(/^wss:/, 'https:');
  const proxy = getProxyForUrl(httpsUrl) || null;
  const tunnel = await openTunnel({ url: t.url, token: t.token, certificateSha256, listenPort, proxy, transport: opts.websocket ? 'websocket' : 'auto', onEvent: print }).catch((err: NodeJS.ErrnoException) => {
    throw new CliError(err.code === 'EADDRINUSE' ? `port ${listenPort} on 127.0.0.1 is in use: choose another with --local-port` : err.message);
  });
  const gateway = new URL(t.url).host;
  console.log(`Tunnel to ${gateway}${proxy ? ` through the proxy ${redact(proxy)}` : ''}${certificateSha256 ? ' (certificate pinned)' : ''} is listening on ${tunnel.host}:${tunnel.port}`);
  console.log(`Connect with:  ${clientCommandFor(opts.protocol, tunnel.host, tunnel.port)}`);
  console.log('The grant is single-use: it admits one session (and reconnects from this address for a short while after it ends); connect again from your portal for another. Ctrl-C closes the local port.');
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      void tunnel.close().then(resolve);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

function print(e: TunnelEvent): void {
  if (e.kind === 'open') console.error(`${e.local}: tunnel open (${e.transport === 'native' ? 'native TLS' : 'WebSocket'})`);
  else if (e.kind === 'refused') console.error(`${e.local}: refused by the gateway: ${e.message}`);
  else if (e.kind === 'error') console.error(`${e.local}: ${e.message}`);
  else if (e.kind === 'closed') {
    // The native mode's stream has no room for the gateway's reason (ADR 0032): say where to find it.
    const why = e.endedBy === 'gateway' ? ": the gateway ended it (the desktop closed the connection, or it was released: `stagedoor status` shows the connection's state)" : '';
    console.error(`${e.local}: session ended (${e.bytesUp} bytes up, ${e.bytesDown} down)${why}`);
  }
}

/** The proxy URL without its password, for the terminal. */
function redact(proxy: string): string {
  try {
    const u = new URL(proxy);
    if (u.password) u.password = '***';
    return u.toString().replace(/\/$/, '');
  } catch {
    return proxy;
  }
}
