import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkMigration, findBreakingChanges } from '../../release/migration-rules.ts';
import { REPO_ROOT } from '../support/processes.ts';

const MIGRATIONS = path.join(REPO_ROOT, 'apps/broker/src/db/migrations');
const VERSION = (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/**
 * Released migrations that break the rule, each with the reason it was let through. A released
 * migration is never edited (docs/developing.md), so the only way to keep an old mistake from
 * failing this check is to name it here. None so far: 0000–0009 only add, drop indexes and
 * constraints, or relax NOT NULL, all of which older brokers live with.
 */
const RELEASED_EXCEPTIONS: Record<string, string> = {};

describe('migrations only add within a minor version (docs/operations.md, "Upgrades")', () => {
  const files = fs.readdirSync(MIGRATIONS).filter((f) => f.endsWith('.sql')).sort();

  it.each(files)('%s', (file) => {
    const problems = checkMigration(fs.readFileSync(path.join(MIGRATIONS, file), 'utf8'), VERSION);
    if (RELEASED_EXCEPTIONS[file]) return;
    expect(problems.map((p) => p.message)).toEqual([]);
  });

  it('lists only exceptions that exist and still need it', () => {
    for (const file of Object.keys(RELEASED_EXCEPTIONS)) {
      expect(files, file).toContain(file);
      expect(checkMigration(fs.readFileSync(path.join(MIGRATIONS, file), 'utf8'), VERSION), `${file} no longer breaks the rule: remove it from the list`).not.toEqual([]);
    }
  });
});

describe('the migration rule itself', () => {
  it.each([
    ['DROP TABLE "pools";', 'pools', 'drops a table'],
    ['DROP TABLE IF EXISTS public.old_grants, "old_users";', 'old_grants', 'drops a table'],
    ['ALTER TABLE "users" DROP COLUMN "display_name";', 'users.display_name', 'drops a column'],
    ['ALTER TABLE users DROP display_name;', 'users.display_name', 'drops a column'],
    ['ALTER TABLE "users" RENAME COLUMN "name" TO "username";', 'users.name', 'renames a column'],
    ['ALTER TABLE "users" RENAME TO "accounts";', 'users', 'renames a table'],
    ['ALTER TABLE "users" ALTER COLUMN "age" SET DATA TYPE bigint;', 'users.age', 'changes a column type'],
    ['ALTER TABLE "users" ALTER COLUMN "email" SET NOT NULL;', 'users.email', 'makes a column NOT NULL'],
    ['ALTER TABLE "users" ADD COLUMN "tier" text NOT NULL;', 'users.tier', 'adds a NOT NULL column without a default'],
    ['ALTER TABLE "users" ADD COLUMN "x" text, DROP COLUMN "y";', 'users.y', 'drops a column'],
  ])('fails %s', (sql, object, what) => {
    expect(findBreakingChanges(sql)).toContainEqual({ object, what });
    expect(checkMigration(sql, '0.1.0').length).toBeGreaterThan(0);
  });

  it.each([
    'CREATE TABLE "a" ("id" uuid PRIMARY KEY, "n" text NOT NULL);',
    'ALTER TABLE "users" ADD COLUMN "tier" text DEFAULT \'standard\' NOT NULL;',
    'ALTER TABLE "users" ADD COLUMN "note" text;',
    'ALTER TABLE "grants" DROP CONSTRAINT "grants_ports_check";',
    'ALTER TABLE "grants" ALTER COLUMN "gateway_port" DROP NOT NULL;',
    'ALTER TABLE "grants" ALTER COLUMN "gateway_port" DROP DEFAULT;',
    'DROP INDEX "grants_live_gateway_port_key";',
    'ALTER TABLE "users" ADD CONSTRAINT "users_name_check" CHECK (char_length("name") > 0);',
    '-- DROP TABLE "users"; (a comment)\nCREATE TABLE "b" ("id" uuid);',
    'INSERT INTO "audit" ("action") VALUES (\'DROP TABLE users\');',
    'ALTER TABLE "users" RENAME CONSTRAINT "a" TO "b";',
  ])('passes %s', (sql) => {
    expect(checkMigration(sql, '0.1.0')).toEqual([]);
  });

  it('lets the second step through only in a later minor version than the marker names', () => {
    const contract = '-- two-step: users.display_name unused since 0.1\nALTER TABLE "users" DROP COLUMN "display_name";';
    expect(checkMigration(contract, '0.2.0')).toEqual([]);
    expect(checkMigration(contract, '1.0.0')).toEqual([]);
    expect(checkMigration(contract, '0.1.3')).toMatchObject([{ object: 'users.display_name', message: expect.stringMatching(/not before 0\.1/) }]);
    // The marker covers the object it names, not another one in the same file.
    expect(checkMigration(`${contract}\nDROP TABLE "pools";`, '0.2.0')).toMatchObject([{ object: 'pools', what: 'drops a table' }]);
    // Tightening NOT NULL once every broker writes the column.
    expect(checkMigration('-- two-step: users.email written since 0.1\nALTER TABLE "users" ALTER COLUMN "email" SET NOT NULL;', '0.2.0')).toEqual([]);
    // A NOT NULL column without a default breaks the older brokers' INSERTs whatever the marker says.
    expect(checkMigration('-- two-step: users.tier written since 0.1\nALTER TABLE "users" ADD COLUMN "tier" text NOT NULL;', '0.2.0')).toHaveLength(1);
  });
});
