import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { openPglite } from '../src/db/pglite.ts';
import { openToOthers } from '../../../test/support/private-files.ts';

function capturingLog() {
  const lines: string[] = [];
  const log = pino({ level: 'info' }, new Writable({ write: (chunk, _e, cb) => (lines.push(String(chunk)), cb()) }));
  return { log, lines };
}

// A first open runs initdb on disk: ~10 s on a busy two-core machine.
describe('the embedded database directory', { timeout: 120_000 }, () => {
  const roots: string[] = [];
  afterEach(() => {
    for (const r of roots.splice(0)) fs.rmSync(r, { recursive: true, force: true });
  });
  const tempRoot = () => {
    const r = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-datadir-'));
    roots.push(r);
    return r;
  };

  it('a new embedded database is not readable or writable by other local users (dir 0700, no group/other bits on its files)', async () => {
    const dir = path.join(tempRoot(), 'state', 'db');
    const database = await openPglite({ dataDir: dir });
    try {
      await database.db.execute('create table t (x int)' as never);
    } finally {
      await database.close();
    }
    expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
    expect(fs.statSync(path.dirname(dir)).mode & 0o777).toBe(0o700);
    expect(fs.readdirSync(dir).length).toBeGreaterThan(10);
    expect(openToOthers(dir)).toEqual([]);
  });

  it('an existing world-writable database directory is tightened at open, with a log line', async () => {
    const dir = path.join(tempRoot(), 'db');
    const first = await openPglite({ dataDir: dir });
    await first.close();
    // As the old code (or a careless copy) left it: 0777 directory, 0666 files.
    fs.chmodSync(dir, 0o777);
    for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
      fs.chmodSync(path.join(entry.parentPath, entry.name), entry.isDirectory() ? 0o777 : 0o666);
    }
    const { log, lines } = capturingLog();
    const again = await openPglite({ dataDir: dir, log });
    await again.close();
    expect(openToOthers(dir)).toEqual([]);
    expect(lines.join('\n')).toMatch(/data directory was open to other users: tightened to 0700/);
    expect(lines.join('\n')).toMatch(/group and other permissions removed/);
  });
});
