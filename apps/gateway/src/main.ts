import { loadGatewayConfig, type GatewayConfig } from './config.ts';
import { ephemeralOverlapNotice, readEphemeralPortRange } from './ephemeral-ports.ts';
import { enroll, EnrollmentError, readState, writeState, type GatewayState } from './enroll.ts';
import { Gateway } from './gateway.ts';
import { createLog, type Log } from './log.ts';
import { loadOrCreateSshHostKey } from './routed/ssh-host-key.ts';
import { TlsCertificate } from './routed/tls-certificate.ts';
import { GATEWAY_VERSION } from './version.ts';

/**
 * `stagedoor gateway`: enrol on the first start (one-time token), keep the credential in the data
 * directory, then hold the control channel and relay what the broker grants until a signal.
 */
export async function runGateway(opts: { enrollToken?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Gateway> {
  const config = loadGatewayConfig(opts.env ?? process.env, opts.enrollToken ? { STAGEDOOR_GATEWAY_ENROLL_TOKEN: opts.enrollToken } : {});
  // Until enrolment answers, the only name is the one this gateway proposes (STAGEDOOR_GATEWAY_NAME
  // or the host name); from then on every line carries the name the broker knows it by.
  const boot = createLog(config.logLevel, { role: 'gateway', name: config.name });
  for (const notice of config.notices) boot.warn({}, notice);
  const overlap = ephemeralOverlapNotice('STAGEDOOR_GATEWAY_PORTS', config.portRangeStart, config.portRangeEnd, readEphemeralPortRange());
  if (overlap) boot.warn({}, overlap);
  const state = await enrolledState(config, boot);
  const log = createLog(config.logLevel, { role: 'gateway', name: state.name });
  const gateway = await startGatewayWith(config, state, log);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'gateway stopping');
    gateway.stop();
    setTimeout(() => process.exit(0), 200).unref();
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  return gateway;
}

export async function startGatewayWith(config: GatewayConfig, state: GatewayState, log: Log): Promise<Gateway> {
  const r = config.routed;
  // The routed modes' identities (ADR 0017): the SSH host key made at enrolment, the HTTPS
  // certificate from files (reloaded on change) or made once and kept in the data directory.
  const sshHostKey = r.sshPort === null ? null : loadOrCreateSshHostKey(config.dataDir);
  const certificate =
    r.httpsPort === null
      ? null
      : await TlsCertificate.load({
          files: r.tlsCertFile && r.tlsKeyFile ? { cert: r.tlsCertFile, key: r.tlsKeyFile } : null,
          dataDir: config.dataDir,
          hostnames: state.publicAddress ? [state.publicAddress] : [],
          log: log.child({ area: 'tls' }),
        });
  const gateway = await new Gateway({
    brokerUrls: config.brokerUrls,
    credential: state.credential,
    listenHost: config.listenHost,
    proxyProtocol: config.proxyProtocol,
    failClosedMs: config.failClosedMs,
    lingerMs: config.lingerMs,
    connectTimeoutMs: config.connectTimeoutMs,
    workers: config.workers,
    relay: config.relay,
    routed: { rdpPort: r.rdpPort, tlsPort: r.tlsPort, sshPort: r.sshPort, tunnelPort: r.httpsPort, sshHostKey, certificate, claimTimeoutMs: r.claimTimeoutMs },
    log,
  }).start();
  gateway.logStarted({
    gatewayId: state.gatewayId,
    cluster: state.cluster,
    // The configured name differs when the admin's enrolment record named this gateway.
    ...(state.name !== config.name ? { proposedName: config.name } : {}),
    brokers: config.brokerUrls,
    ports: `${config.portRangeStart}-${config.portRangeEnd}`,
    listen: config.listenHost,
    relay: config.relay,
    workers: config.workers,
    routed: { rdp: r.rdpPort, ssh: r.sshPort, tls: r.tlsPort, https: r.httpsPort },
  });
  return gateway;
}

/** The stored credential; with a token, a fresh enrolment (which also re-enrols an existing gateway). */
export async function enrolledState(config: GatewayConfig, log: Log): Promise<GatewayState> {
  const existing = readState(config.dataDir);
  if (config.enrollToken) {
    const state = await enroll(config.brokerUrls, {
      token: config.enrollToken,
      name: config.name,
      portRangeStart: config.portRangeStart,
      portRangeEnd: config.portRangeEnd,
      version: GATEWAY_VERSION,
    });
    writeState(config.dataDir, state);
    sshHostKey(config, log);
    log.info({ gatewayId: state.gatewayId, cluster: state.cluster, publicAddress: state.publicAddress, reenrolled: Boolean(existing) }, 'enrolled with the broker; clients dial the public address of the enrolment record');
    return state;
  }
  if (!existing) throw new EnrollmentError(`not enrolled yet (no credential in ${config.dataDir}): start once with --enroll <token> from POST /api/v1/gateways/enrollments (a gateway the broker knows already: POST /api/v1/gateways/{id}/reenrollments)`);
  sshHostKey(config, log); // a gateway enrolled before the SSH jump host existed gets its key now
  return existing;
}

/**
 * The SSH jump host's key is made at enrolment and kept beside the credential (ADR 0017), so it
 * exists before the first hello reports it and survives restarts (users pin it in known_hosts).
 */
function sshHostKey(config: GatewayConfig, log: Log): void {
  const key = loadOrCreateSshHostKey(config.dataDir);
  log.info({ sshHostKey: key.fingerprint }, 'SSH host key');
}
