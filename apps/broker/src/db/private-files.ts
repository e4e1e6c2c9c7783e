import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';

/** Bits that let the group or anyone else read, write or enter. */
const GROUP_OTHER = 0o077;

/**
 * Create `dir` (and missing parents) readable by this user only (0700), or tighten an existing one
 * that others could reach, saying so in the log: the embedded database, the dev secret key and the
 * sandbox state live here, and PGlite writes its files 0666 less the umask.
 */
export function ensurePrivateDir(dir: string, log?: Pick<Logger, 'warn'>): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const mode = fs.statSync(dir).mode & 0o777;
  if (mode & GROUP_OTHER) {
    fs.chmodSync(dir, 0o700);
    log?.warn({ path: dir, was: octal(mode), now: '700' }, 'data directory was open to other users: tightened to 0700');
  }
}

/**
 * Take group and other permissions off everything under `dir` (the directory itself stays as it
 * is). Returns how many entries were changed; logs once when any were.
 */
export function restrictTree(dir: string, log?: Pick<Logger, 'warn'>): number {
  let changed = 0;
  const walk = (p: string) => {
    for (const entry of fs.readdirSync(p, { withFileTypes: true })) {
      const full = path.join(p, entry.name);
      if (entry.isSymbolicLink()) continue; // chmod would follow it out of the tree
      const mode = fs.statSync(full).mode & 0o7777;
      if (mode & GROUP_OTHER) {
        fs.chmodSync(full, mode & ~GROUP_OTHER);
        changed++;
      }
      if (entry.isDirectory()) walk(full);
    }
  };
  walk(dir);
  if (changed) log?.warn({ path: dir, entries: changed }, 'files in the data directory were open to other users: group and other permissions removed');
  return changed;
}

/** A file only this user may read and write (0600), however it was left. */
export function ensurePrivateFile(file: string, log?: Pick<Logger, 'warn'>): void {
  const mode = fs.statSync(file).mode & 0o777;
  if (mode & GROUP_OTHER) {
    fs.chmodSync(file, 0o600);
    log?.warn({ path: file, was: octal(mode), now: '600' }, 'file was open to other users: tightened to 0600');
  }
}

const octal = (mode: number) => mode.toString(8).padStart(3, '0');
