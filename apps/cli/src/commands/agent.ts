import type { Command } from 'commander';
import { ConfigError } from '@stagedoor/broker';

/**
 * `stagedoor agent`: the workstation agent (Linux). Loads only the agent package: it needs no
 * database and no broker code, just the broker's URL and this machine's agent token.
 */
export function agentCommand(program: Command): void {
  program
    .command('agent')
    .description('run the workstation agent: report user login, logout, lock, idle and a heartbeat to the broker (STAGEDOOR_BROKER_URL, STAGEDOOR_AGENT_TOKEN)')
    .option('--broker <url>', 'the broker URL (else STAGEDOOR_BROKER_URL)')
    .option('--token <token>', "this workstation's agent token (else STAGEDOOR_AGENT_TOKEN, else the token file)")
    .option('--token-file <path>', 'file holding the agent token (default /etc/stagedoor/agent-token)')
    .option('--poll <seconds>', 'how often to look at the sessions (default 10)')
    .option('--idle <seconds>', 'no input for this long = idle (default 300)')
    .option('--source <source>', 'auto (logind when systemd runs, else utmp), logind or utmp', 'auto')
    .option('--utmp <path>', 'utmp file for the utmp source', '/var/run/utmp')
    .option('--ignore-users <list>', 'comma-separated users whose sessions are not the artist\'s (e.g. root,ansible; else STAGEDOOR_AGENT_IGNORE_USERS)')
    .option('--allow-insecure-broker', 'allow an http:// broker URL beyond loopback: the agent token then crosses the network in clear text (else STAGEDOOR_AGENT_ALLOW_INSECURE_BROKER=true)')
    .action(async (opts: { broker?: string; token?: string; tokenFile?: string; poll?: string; idle?: string; source?: string; utmp?: string; ignoreUsers?: string; allowInsecureBroker?: boolean }) => {
      const { loadAgentConfig, runLinuxAgent, AgentConfigError } = await import('@stagedoor/agent');
      try {
        await runLinuxAgent(loadAgentConfig(opts, process.env));
      } catch (err) {
        if (err instanceof AgentConfigError) throw new ConfigError(err.problems);
        throw err;
      }
    });
}
