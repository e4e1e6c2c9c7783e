import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/processes.ts';

/**
 * .ci/packages is the one list of what the suite needs from the machine: `.ci/run` installs from it
 * and the test run checks it first (test/support/packages-check.ts). These tests keep the list honest:
 * the check names the package of what is missing, every program a test starts is listed, and each
 * listed program or file really comes from the package the list names.
 */
const CHECKER = path.join(REPO_ROOT, '.ci/packages.mjs');

interface Entry {
  what: string;
  package: string;
  why: string;
  /** Where the checker found it on this machine, or null. */
  found: string | null;
}

function checker(args: string[]) {
  const r = spawnSync(process.execPath, [CHECKER, ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout + r.stderr };
}

const table = JSON.parse(checker(['entries']).out) as Entry[];

describe('the package check (.ci/packages)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sd-packages-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('a Samba module that provisioning loads but no package installed fails the check naming its Debian package, not deep inside samba-tool', () => {
    const file = path.join(dir, 'packages');
    fs.writeFileSync(
      file,
      [
        '# a table like the real one, with two lines this machine cannot have',
        'sh                                      dash               shell scripts',
        `${dir}/*/samba/vfs/acl_xattr.so         samba-vfs-modules  the modules samba-tool domain provision loads`,
        'sd-no-such-server                       sd-no-such-pkg     a server no machine has',
        '',
      ].join('\n'),
    );
    const check = checker(['check', '--table', file]);
    expect(check.code).toBe(1);
    expect(check.out).toContain(`missing: ${dir}/*/samba/vfs/acl_xattr.so (Debian package samba-vfs-modules)`);
    expect(check.out).toContain('missing: sd-no-such-server (Debian package sd-no-such-pkg)');
    expect(check.out).toContain('sudo npm run test:deps');
    expect(check.out).not.toContain('missing: sh');
    // What `.ci/run` installs: each missing package once, nothing that is present.
    expect(checker(['missing', '--table', file]).out.trim().split('\n')).toEqual(['samba-vfs-modules', 'sd-no-such-pkg']);

    // Once the module is there (an architecture directory, as Debian's multiarch path has), the line passes.
    fs.mkdirSync(path.join(dir, 'x86_64-linux-gnu/samba/vfs'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'x86_64-linux-gnu/samba/vfs/acl_xattr.so'), '');
    expect(checker(['missing', '--table', file]).out.trim().split('\n')).toEqual(['sd-no-such-pkg']);
  });

  it('a table line it cannot read stops the check instead of passing', () => {
    const file = path.join(dir, 'broken');
    fs.writeFileSync(file, 'lonely-word\n');
    const r = checker(['missing', '--table', file]);
    expect(r.code).not.toBe(0);
    expect(r.out).toContain('expected "what package why"');
  });

  it('every program a test or its support code starts is in the table, so a fresh machine gets its package', () => {
    const listed = new Set(table.flatMap((e) => [e.what, path.basename(e.what)]));
    const started = programsStartedByTests();
    expect(started.size).toBeGreaterThan(10); // the scan finds the programs it is meant to find
    const unlisted = [...started].filter(([program]) => !listed.has(program) && !listed.has(path.basename(program)));
    expect(unlisted.map(([program, file]) => `${file} starts \`${program}\`, which .ci/packages does not list`)).toEqual([]);
  });

  it('each line names the Debian package that really provides its program or file (dpkg says so)', () => {
    const debian = table.filter((e) => e.package !== '-');
    const owners = debianOwners(debian);
    const wrong = debian
      .filter((e) => !owners.get(e)!.some((owner) => owner === e.package || dependsOn(e.package).includes(owner)))
      .map((e) => `${e.what}: the table says ${e.package}, dpkg says ${owners.get(e)!.join(', ') || 'no package'}`);
    expect(wrong).toEqual([]);
  });
});

/**
 * Program names passed literally to the ways tests start programs: spawn/execFile and friends, the
 * directory servers' requireBinary, and the network namespaces' net.run/net.spawn and `ip netns exec`.
 * Maps each program to a file that starts it.
 */
function programsStartedByTests(): Map<string, string> {
  const patterns = [
    /\b(?:spawnProcess|spawnSync|spawn|execFileSync|execFile|requireBinary)\(\s*'([^']+)'/g,
    /\bnet\.(?:run|spawn)\([^,]+,\s*'([^']+)'/g,
    /'netns',\s*'exec',\s*[^,]+,\s*'([^']+)'/g,
  ];
  const found = new Map<string, string>();
  for (const file of testSources()) {
    const text = fs.readFileSync(file, 'utf8');
    for (const re of patterns) {
      for (const m of text.matchAll(re)) if (!found.has(m[1]!)) found.set(m[1]!, path.relative(REPO_ROOT, file));
    }
  }
  return found;
}

function testSources(): string[] {
  const roots = ['test', ...['apps', 'packages'].flatMap((d) => fs.readdirSync(path.join(REPO_ROOT, d)).map((p) => path.join(d, p, 'test')))];
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory() && e.name !== 'node_modules') walk(p);
      else if (e.isFile() && /\.(ts|mjs|js)$/.test(e.name)) out.push(p);
    }
  };
  for (const root of roots.map((r) => path.join(REPO_ROOT, r)).filter((r) => fs.existsSync(r))) walk(root);
  return out;
}

/**
 * The Debian packages that own each line's file: the path the checker found, or for a command its
 * copies in Debian's own bin directories (a PATH entry such as pyenv's shims belongs to no package).
 * One dpkg-query call for all, since each call reads dpkg's whole file list.
 */
function debianOwners(entries: Entry[]): Map<Entry, string[]> {
  const candidates = new Map<Entry, string[]>();
  for (const e of entries) {
    const files = e.what.startsWith('/') ? (e.found ? [e.found] : []) : ['/usr/sbin', '/usr/bin', '/sbin', '/bin'].map((d) => path.join(d, e.what)).filter((p) => fs.existsSync(p));
    // Since /usr was merged, dpkg knows many programs by /bin or /sbin, and some files by their real path.
    candidates.set(e, [...new Set(files.flatMap((p) => [p, p.replace(/^\/usr\//, '/'), fs.realpathSync(p)]))]);
  }
  const all = [...new Set([...candidates.values()].flat())];
  const owned = new Map<string, string[]>();
  const r = spawnSync('dpkg-query', ['-S', ...all], { encoding: 'utf8' });
  for (const line of r.stdout.split('\n')) {
    const at = line.indexOf(': ');
    if (at > 0) owned.set(line.slice(at + 2), line.slice(0, at).split(', ').map((p) => p.replace(/:[a-z0-9]+$/, '')));
  }
  return new Map([...candidates].map(([e, files]) => [e, [...new Set(files.flatMap((f) => owned.get(f) ?? []))]]));
}

/** The packages `pkg` depends on directly: a line may name the package one installs (postgresql → postgresql-15). */
function dependsOn(pkg: string): string[] {
  const r = spawnSync('dpkg-query', ['-W', '-f', '${Pre-Depends}, ${Depends}', pkg], { encoding: 'utf8' });
  return r.stdout.split(/[,|]/).map((d) => d.trim().split(/[\s:]/)[0]!).filter(Boolean);
}
