import fs from 'node:fs';
import path from 'node:path';
import semver from 'semver';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/processes.ts';

/**
 * Stagedoor supports Node 20 (the root package.json's `engines.node`). A dependency whose own
 * `engines.node` refuses it makes `npm install` warn EBADENGINE and, worse, may not run at all
 * (issue 16 point 12: cookie@2 needs Node 22; package.json `overrides` pins cookie@1.1, which has
 * the same API). This reads what package-lock.json will install and fails naming each offender.
 */
interface LockEntry {
  version?: string;
  engines?: Record<string, string> | string[];
  dev?: boolean;
  optional?: boolean;
}

const root = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { engines: { node: string } };
const lock = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };

/** Node versions the project promises: the lowest its range allows and the newest Node 20. */
const oldest = semver.minVersion(root.engines.node)!.version;

function refusing(node: string): string[] {
  const out: string[] = [];
  for (const [where, entry] of Object.entries(lock.packages)) {
    if (!where || Array.isArray(entry.engines)) continue; // the root, and an old array form npm ignores
    const range = entry.engines?.node;
    if (range && !semver.satisfies(node, range)) out.push(`${where.replace(/^.*node_modules\//, '')}@${entry.version} needs node ${range}`);
  }
  return out;
}

describe('package-lock.json on Node 20', () => {
  it('the project still promises Node 20', () => {
    expect(semver.major(oldest)).toBe(20);
  });

  it(`every locked package accepts the oldest Node the project supports (${oldest})`, () => {
    expect(refusing(oldest)).toEqual([]);
  });

  it('every locked package accepts the Node running this test', () => {
    expect(refusing(process.versions.node)).toEqual([]);
  });

  it('the check is able to fail: a Node-22-only entry is named', () => {
    lock.packages['node_modules/probe'] = { version: '2.0.2', engines: { node: '>=22' } };
    try {
      expect(refusing(oldest)).toEqual(['probe@2.0.2 needs node >=22']);
    } finally {
      delete lock.packages['node_modules/probe'];
    }
  });
});
