import type { RefusalReason } from '@stagedoor/contract';
import { AddressList } from './addresses.ts';
import { createLog, type LogLevel } from './log.ts';
import type { RelaySettings } from './native-relay.ts';
import { PortForwarder } from './port-forward.ts';
import type { FromWorker, FromWorkerBatch, ToWorker } from './workers.ts';

/** A relay worker: a PortForwarder for the grants whose port the gateway process routes here. */
const opts = JSON.parse(process.argv[2] ?? '{}') as {
  index: number;
  listenHost: string;
  proxyProtocol: { enabled: boolean; sources: string[] };
  lingerMs: number;
  connectTimeoutMs: number;
  relay?: RelaySettings;
  logLevel?: LogLevel;
};
// What one event-loop turn produced goes out as one message: under a storm of connections, one IPC
// write per session start and end cost more than the relaying.
let outbox: FromWorkerBatch = [];
const flush = () => {
  const batch = outbox;
  outbox = [];
  if (process.connected) process.send!(batch);
};
const send = (m: FromWorker) => {
  if (outbox.push(m) === 1) setImmediate(flush);
};
let refusal: RefusalReason | null = 'fail-closed';
const forwarder = new PortForwarder({
  listenHost: opts.listenHost,
  proxyProtocol: { enabled: opts.proxyProtocol.enabled, sources: new AddressList(opts.proxyProtocol.sources) },
  lingerMs: opts.lingerMs,
  connectTimeoutMs: opts.connectTimeoutMs,
  relay: opts.relay,
  now: Date.now,
  refuseAll: () => refusal,
  log: createLog(opts.logLevel ?? 'warn', { role: 'gateway', area: 'relay', worker: opts.index }),
  reporter: {
    sessionStarted: (grant, client, at) => send({ t: 'started', grantId: grant.id, client, at: at.getTime() }),
    sessionEnded: (grant, outcome, at) => send({ t: 'ended', grantId: grant.id, outcome, at: at.getTime() }),
    refused: (port, client, reason, grantId) => send({ t: 'refused', port, client, reason, grantId }),
    listening: (grantId) => send({ t: 'listening', grantId }),
  },
});
process.on('message', (m: ToWorker) => {
  switch (m.t) {
    case 'grant':
      return forwarder.addGrant(m.grant);
    case 'revoke':
      return forwarder.revoke(m.grantId, m.reason);
    case 'replace':
      return forwarder.replaceGrants(m.grants);
    case 'refuse':
      refusal = m.reason;
  }
});
// Half a heartbeat: the gateway process reports these to the broker every heartbeat (5 s).
const stats = setInterval(() => send({ t: 'stats', sessions: forwarder.sessions(), grants: forwarder.grantCount, bytes: forwarder.totalBytes() }), 2500);
// The gateway process went away: nothing may relay without it.
process.on('disconnect', () => {
  clearInterval(stats);
  forwarder.close();
  process.exit(0);
});
process.on('SIGTERM', () => {
  forwarder.close();
  process.exit(0);
});
