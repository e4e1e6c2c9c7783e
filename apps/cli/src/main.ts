import { Command, CommanderError } from 'commander';
import { ConfigError, DataDirInUseError, DomainError, VERSION } from '@stagedoor/broker';
import { adminCommands } from './commands/admin.ts';
import { serverCommands } from './commands/server.ts';
import { ec2EmulatorCommand } from './commands/ec2-emulator.ts';
import { applyCommand } from './commands/apply.ts';
import { userCommands } from './commands/user.ts';
import { agentCommand } from './commands/agent.ts';
import { reportCommands } from './commands/report.ts';
import { CliError } from './cli-error.ts';

/** The one `stagedoor` command. Each role or tool is a subcommand; later issues add theirs. */
export async function main(argv: string[]): Promise<void> {
  const program = new Command('stagedoor')
    .description('Stagedoor — connection broker and gateway for virtual workstations')
    .version(VERSION)
    .showHelpAfterError()
    .exitOverride();
  serverCommands(program);
  adminCommands(program);
  (await import('./commands/gateway.ts')).gatewayCommands(program);
  ec2EmulatorCommand(program);
  applyCommand(program);
  userCommands(program);
  agentCommand(program);
  reportCommands(program);
  try {
    await program.parseAsync(argv);
  } catch (err) {
    process.exitCode = exitCodeFor(err);
  }
}

function exitCodeFor(err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode; // commander printed it already
  if (err instanceof ConfigError) {
    console.error(`stagedoor: ${err.message}`);
    return 2;
  }
  if (err instanceof CliError || err instanceof DomainError || err instanceof DataDirInUseError) {
    console.error(`stagedoor: ${err.message}`);
    return 1;
  }
  console.error('stagedoor: failed:', err instanceof Error ? (err.stack ?? err.message) : err);
  return 1;
}
