import type { Command } from 'commander';
import { lazy } from '../lazy.ts';
import { urlOption } from './options.ts';

const admin = () => import('../actions/admin.ts');
// The roles, spelled here so that `--help` does not load the contract (zod); actions/admin.ts checks them.
const ROLES = 'admin, operator, auditor, user';

/**
 * Administration on the server itself, straight on the database (no HTTP, no session): create a
 * user, reset a password, re-seal stored secrets under a new key. Every change is audited as
 * `cli:<command>`. `create-user` goes through the API instead when a running `stagedoor dev`
 * holds the embedded database (docs/cli.md).
 */
export function adminCommands(program: Command): void {
  const group = program.command('admin').description('manage users and stored secrets directly on the database (break-glass, key rotation)');

  group
    .command('create-user <username>')
    .description('create a local user; prints a generated password unless one is given. When a running `stagedoor dev` holds the embedded database, it asks that broker instead (as your `stagedoor login` session)')
    .option('--role <role>', `one of ${ROLES}`, 'user')
    .option('--group <name...>', 'put the user in these groups (by name)')
    .option('--password-stdin', 'read the password from standard input')
    .addOption(urlOption())
    .action(lazy(admin, 'createUser'));

  group
    .command('reset-password <username>')
    .description("set a user's password and end their sessions and API tokens; prints a generated password unless one is given")
    .option('--password-stdin', 'read the password from standard input')
    .action(lazy(admin, 'resetPassword'));

  group
    .command('rotate-secret-key')
    .description(
      're-seal every stored secret under STAGEDOOR_SECRET_KEY; secrets sealed under an older key open with STAGEDOOR_SECRET_KEY_PREVIOUS. In batches, safe to rerun (see docs/decisions/0015)',
    )
    .option('--batch-size <n>', 'secrets per transaction', '100')
    .action(lazy(admin, 'rotateSecretKey'));
}
