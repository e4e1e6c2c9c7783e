import type { Command } from 'commander';
import { lazy } from '../lazy.ts';

const server = () => import('../actions/server.ts');

/** The long-running roles: dev, broker, gateway, agent, the EC2 emulator; and `migrate`. */
export function serverCommands(program: Command): void {
  program
    .command('dev')
    .description('run everything in one process on the embedded database: broker, jobs and web app (what `npm start` runs)')
    .option('--sandbox', 'also run the EC2 emulator and register it as the provider "sandbox" (no AWS account needed)')
    .action(lazy(server, 'runDev'));

  program
    .command('broker')
    .description('run a broker node (production role: set DATABASE_URL so that several nodes share one PostgreSQL)')
    .action(lazy(server, 'runBrokerRole'));

  program
    .command('migrate')
    .description('apply database migrations and exit (they also apply when a broker starts)')
    .action(lazy(server, 'runMigrate'));

  program
    .command('gateway')
    .description('run a gateway: relay broker-granted connections to private workstations (STAGEDOOR_BROKER_URLS, STAGEDOOR_GATEWAY_*)')
    .option('--enroll <token>', 'enrol with a one-time token: from POST /api/v1/gateways/enrollments (a new gateway) or POST /api/v1/gateways/{id}/reenrollments (this gateway again)')
    .action(lazy(() => import('../actions/gateway.ts'), 'runGatewayRole'));

  program
    .command('ec2-emulator')
    .description('run the EC2 Query API emulator (point the AWS SDK or CLI at it with --endpoint-url)')
    .option('--port <port>', 'TCP port', '4599')
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('--state <file>', 'load state from this JSON file and save it there')
    .option('--region <region>', 'the region it emulates', 'us-east-1')
    .action(lazy(() => import('../actions/roles.ts'), 'runEc2EmulatorRole'));

  // The agent loads only the agent package: it needs no database and no broker code.
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
    .option('--ignore-users <list>', "comma-separated users whose sessions are not the artist's (e.g. root,ansible; else STAGEDOOR_AGENT_IGNORE_USERS)")
    .option('--allow-insecure-broker', 'allow an http:// broker URL beyond loopback: the agent token then crosses the network in clear text (else STAGEDOOR_AGENT_ALLOW_INSECURE_BROKER=true)')
    .action(lazy(() => import('../actions/roles.ts'), 'runAgentRole'));
}
