import net from 'node:net';
import { useRelayEngine, type RelayEngineChoice } from '../../apps/gateway/src/native-relay.ts';
import { listenWithOnread } from '../../apps/gateway/src/relay.ts';

/**
 * The gateway's byte path alone — the same `listenWithOnread` + `RelaySession` every granted
 * session runs — on one port that relays every connection to one target. For iperf3, whose control
 * and data connections all dial one port: a grant admits one session, so the real gateway cannot
 * carry an iperf3 run. Grant checks are measured where they belong, in the connection-rate test.
 *   tsx bench/gateway/relay-harness.ts <listen port> <target port>
 */
const [listenPort, targetPort] = process.argv.slice(2).map(Number);
// The engine the gateway would pick (STAGEDOOR_GATEWAY_RELAY, default auto: native when built).
const { engine } = useRelayEngine((process.env.STAGEDOOR_GATEWAY_RELAY ?? 'auto') as RelayEngineChoice, Number(process.env.STAGEDOOR_GATEWAY_RELAY_THREADS ?? 1));
const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
listenWithOnread(server, (_server, socket, session) => {
  socket.on('error', () => undefined);
  session.native = engine === 'native';
  session.start(socket, { host: '127.0.0.1', port: targetPort!, connectTimeoutMs: 5000 });
});
server.listen({ port: listenPort, host: '127.0.0.1', backlog: 4096 }, () => process.stdout.write(`{"ready":true,"relay":"${engine}"}\n`));
