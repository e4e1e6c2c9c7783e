import os from 'node:os';
import path from 'node:path';
import { cliActor, type Config } from '@stagedoor/broker';

/** What the dev gateway needs of the broker's gateway service: it enrols through it like an admin would (ADR 0016). */
interface DevGatewayServices {
  createEnrollment(actor: ReturnType<typeof cliActor>, input: { cluster: string; name: string; publicAddress: string; expiresInMinutes: number }): Promise<{ token: string }>;
  createReenrollment(actor: ReturnType<typeof cliActor>, id: string, input: { publicAddress: string; expiresInMinutes: number }): Promise<{ token: string }>;
  findByName(name: string): Promise<{ id: string } | undefined>;
  update(actor: ReturnType<typeof cliActor>, id: string, input: { routedPorts?: { rdp: number; ssh: number; tls: number; tunnel: number }; sniDomain?: string }): Promise<{ sniDomain: string | null }>;
  authenticateChannel(credential: string): Promise<unknown>;
}

/**
 * `stagedoor dev` runs one gateway in its process, enrolled automatically, so that a fresh
 * install brokers real connections: the credential lives in `<data dir>/gateway/`, and is renewed
 * through a one-time token when the broker no longer knows it — a token for a new gateway after a
 * wiped database, a re-enrolment bound to the gateway's id when only the credential was lost. The
 * token's record carries the address clients dial, as for any gateway.
 */
export async function startDevGateway(
  broker: { url: string | null; services: { gateways: DevGatewayServices } },
  config: Pick<Config, 'dataDir' | 'host' | 'port' | 'logLevel' | 'devGateway'>,
): Promise<{ stop(): void; banner: string } | null> {
  if (!config.devGateway || !broker.url) return null;
  const gw = await import('@stagedoor/gateway');
  const dataDir = path.join(config.dataDir, 'gateway');
  const wildcard = config.host === '0.0.0.0' || config.host === '::';
  const brokerUrl = wildcard ? `http://127.0.0.1:${config.port}` : broker.url;
  const publicAddress = wildcard ? os.hostname() : config.host;
  const log = gw.createLog(config.logLevel, { role: 'gateway', name: DEV_GATEWAY });
  const overlap = gw.ephemeralOverlapNotice('STAGEDOOR_DEV_GATEWAY_PORTS', config.devGateway.portRangeStart, config.devGateway.portRangeEnd, gw.readEphemeralPortRange());
  if (overlap) log.warn({}, overlap);
  let state = gw.readState(dataDir);
  if (!state || !(await broker.services.gateways.authenticateChannel(state.credential))) {
    const services = broker.services.gateways;
    const existing = await services.findByName(DEV_GATEWAY);
    const { token } = existing
      ? await services.createReenrollment(cliActor('dev'), existing.id, { publicAddress, expiresInMinutes: 5 })
      : await services.createEnrollment(cliActor('dev'), { cluster: 'default', name: DEV_GATEWAY, publicAddress, expiresInMinutes: 5 });
    state = await gw.enroll([brokerUrl], { token, name: DEV_GATEWAY, portRangeStart: config.devGateway.portRangeStart, portRangeEnd: config.devGateway.portRangeEnd, version: gw.GATEWAY_VERSION });
    gw.writeState(dataDir, state);
  }
  const gateway = new gw.Gateway({
    brokerUrls: [brokerUrl],
    credential: state.credential,
    listenHost: config.host,
    proxyProtocol: { enabled: false, sources: new gw.AddressList([]) },
    failClosedMs: 60_000,
    lingerMs: 30_000,
    connectTimeoutMs: 10_000,
    // The routed modes on free local ports (ADR 0017), so the quick start shows them: the SSH host
    // key and a self-signed HTTPS certificate live beside the credential.
    routed: {
      rdpPort: 0,
      tlsPort: 0,
      sshPort: 0,
      tunnelPort: 0,
      sshHostKey: gw.loadOrCreateSshHostKey(dataDir),
      certificate: await gw.TlsCertificate.load({ files: null, dataDir, hostnames: [publicAddress], log }),
    },
    log,
  }).start();
  await gateway.listening;
  gateway.logStarted({ gatewayId: state.gatewayId, cluster: state.cluster, ports: `${config.devGateway.portRangeStart}-${config.devGateway.portRangeEnd}`, listen: config.host });
  // The instructions name the ports clients dial: here, the free ones the listeners took.
  const port = (l: 'rdp' | 'ssh' | 'tls' | 'tunnel') => gateway.listeners?.portOf(l) ?? 0;
  const ports = { rdp: port('rdp'), ssh: port('ssh'), tls: port('tls'), tunnel: port('tunnel') };
  const routed = Object.values(ports).every((p) => p > 0);
  // *.localhost names resolve to loopback (RFC 6761) in browsers and systemd-resolved; elsewhere
  // `curl --resolve` or an /etc/hosts line does it (docs/gateway.md).
  if (routed) await broker.services.gateways.update(cliActor('dev'), state.gatewayId, { routedPorts: ports, sniDomain: 'gw.localhost' });
  const { portRangeStart, portRangeEnd } = config.devGateway;
  const routedLine = routed ? `; routed modes: RDP ${ports.rdp}, SSH jump ${ports.ssh}, TLS (SNI *.gw.localhost) ${ports.tls}, HTTPS tunnel ${ports.tunnel}` : '';
  return { stop: () => gateway.stop(), banner: `Gateway "${DEV_GATEWAY}" relays granted connections on ${publicAddress} ports ${portRangeStart}-${portRangeEnd}${routedLine} (STAGEDOOR_DEV_GATEWAY_PORTS=off for none)` };
}

const DEV_GATEWAY = 'dev-gateway';
