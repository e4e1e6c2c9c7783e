import { CliError, configError } from '../cli-error.ts';

/** `stagedoor ec2-emulator`: the EC2 Query API emulator on its own, for demos and other tools. */
export async function runEc2EmulatorRole(opts: { port: string; host: string; state?: string; region: string }): Promise<void> {
  const port = Number(opts.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CliError(`--port must be a TCP port number (got "${opts.port}")`);
  const { runEc2Emulator } = await import('@stagedoor/ec2-emulator');
  const emu = await runEc2Emulator({ port, host: opts.host, statePath: opts.state, region: opts.region });
  const stop = async () => {
    await emu.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}

type AgentOptions = { broker?: string; token?: string; tokenFile?: string; poll?: string; idle?: string; source?: string; utmp?: string; ignoreUsers?: string; allowInsecureBroker?: boolean };

/** `stagedoor agent`: the workstation agent (Linux); only the agent package, no broker code. */
export async function runAgentRole(opts: AgentOptions): Promise<void> {
  const { loadAgentConfig, runLinuxAgent, AgentConfigError } = await import('@stagedoor/agent');
  try {
    await runLinuxAgent(loadAgentConfig(opts, process.env));
  } catch (err) {
    if (err instanceof AgentConfigError) throw configError(err.problems);
    throw err;
  }
}
