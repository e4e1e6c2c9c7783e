import { Command, CommanderError } from 'commander';
import { knownExitCode } from './cli-error.ts';
import { adminCommands } from './commands/admin.ts';
import { artistCommands, studioCommands } from './commands/artist.ts';
import { serverCommands } from './commands/servers.ts';
import { VERSION } from './version.ts';

/**
 * The one `stagedoor` command. Each role or tool is a subcommand; this module and `commands/` only
 * declare them (commander and node built-ins): each command's implementation in `actions/` is
 * imported when it runs, so `--version`, `--help` and the artist's commands start without loading
 * the broker (test/system/cli-startup.test.ts checks which modules load; `npm run bench:cli`).
 */
export async function main(argv: string[]): Promise<void> {
  const program = new Command('stagedoor')
    .description('Stagedoor — connection broker and gateway for virtual workstations')
    .version(VERSION)
    .showHelpAfterError()
    .exitOverride();
  serverCommands(program);
  adminCommands(program);
  artistCommands(program);
  studioCommands(program);
  try {
    await program.parseAsync(argv);
  } catch (err) {
    process.exitCode = exitCodeFor(err);
  }
}

function exitCodeFor(err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode; // commander printed it already
  const known = knownExitCode(err);
  if (known !== undefined) {
    console.error(`stagedoor: ${(err as Error).message}`);
    return known;
  }
  console.error('stagedoor: failed:', err instanceof Error ? (err.stack ?? err.message) : err);
  return 1;
}
