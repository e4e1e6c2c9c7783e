import { Agent, AGENT_VERSION } from './agent.ts';
import { AgentConfigError, loadAgentConfig, type AgentConfig } from './config.ts';
import { logoutSession, observeLinux, warnUsers } from './sources/linux.ts';

export { Agent, AGENT_VERSION, AgentConfigError, loadAgentConfig, type AgentConfig };
export { diff, primarySession, NOBODY, type Observation, type OsSession, type AgentEventOut } from './observe.ts';
export { parseUtmp } from './sources/linux.ts';

/** `stagedoor agent` on Linux: run until SIGTERM/SIGINT. Logs are JSON lines on stdout. */
export async function runLinuxAgent(config: AgentConfig): Promise<void> {
  const log = (level: string, msg: string, fields: Record<string, unknown> = {}) => console.log(JSON.stringify({ time: new Date().toISOString(), level, role: 'agent', msg, ...fields }));
  const agent = new Agent({
    brokerUrl: config.brokerUrl,
    token: config.token,
    pollSeconds: config.pollSeconds,
    idleThresholdSeconds: config.idleThresholdSeconds,
    observe: async (now) => {
      const o = await observeLinux({ source: config.source, utmpPath: config.utmpPath, now });
      return { sessions: o.sessions.filter((s) => !config.ignoreUsers.includes(s.user)) };
    },
    warn: warnUsers,
    logout: logoutSession,
    log,
    os: 'linux',
  });
  log('info', 'agent started', { version: AGENT_VERSION, broker: config.brokerUrl, pollSeconds: config.pollSeconds, idleSeconds: config.idleThresholdSeconds, source: config.source });
  agent.start();
  await new Promise<void>((resolve) => {
    const stop = () => {
      agent.stop();
      log('info', 'agent stopped');
      resolve();
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}
