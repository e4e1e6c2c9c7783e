import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { promisify } from 'node:util';
import type { Observation, OsSession } from '../observe.ts';

const run = promisify(execFile);
const UTMP_RECORD = 384;
const USER_PROCESS = 7;

export type LinuxSource = 'auto' | 'logind' | 'utmp';

/** logind runs when systemd is PID 1; it knows sessions, idle and lock hints for us. */
export function logindAvailable(): boolean {
  return fs.existsSync('/run/systemd/system');
}

/** The user sessions on this Linux machine now: from logind when it runs, else utmp + tty/X11 idle time. */
export async function observeLinux(opts: { source: LinuxSource; utmpPath: string; now: Date }): Promise<Observation> {
  const useLogind = opts.source === 'logind' || (opts.source === 'auto' && logindAvailable());
  return { sessions: useLogind ? await logindSessions(opts.now) : await utmpSessions(opts.utmpPath, opts.now) };
}

async function logindSessions(now: Date): Promise<OsSession[]> {
  const { stdout } = await run('loginctl', ['list-sessions', '--no-legend'], { timeout: 5000 });
  const out: OsSession[] = [];
  for (const line of stdout.split('\n').map((l) => l.trim()).filter(Boolean)) {
    const id = line.split(/\s+/)[0]!;
    const { stdout: props } = await run('loginctl', ['show-session', id, '-p', 'Name', '-p', 'Class', '-p', 'State', '-p', 'IdleHint', '-p', 'IdleSinceHint', '-p', 'LockedHint', '-p', 'Remote'], { timeout: 5000 });
    const p = Object.fromEntries(props.split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    if (p.Class !== 'user' || p.State === 'closing') continue;
    const since = Number(p.IdleSinceHint ?? 0);
    const idleSeconds = p.IdleHint === 'yes' && since > 0 ? Math.max(0, Math.floor((now.getTime() - since / 1000) / 1000)) : 0;
    out.push({ id, user: p.Name ?? '', idleSeconds, locked: p.LockedHint === 'yes' });
  }
  return out;
}

interface UtmpEntry {
  type: number;
  pid: number;
  line: string;
  user: string;
  host: string;
}

/** Parse utmp (glibc x86-64/aarch64 layout: 384-byte records). */
export function parseUtmp(buf: Buffer): UtmpEntry[] {
  const out: UtmpEntry[] = [];
  const str = (off: number, len: number) => {
    const s = buf.subarray(off, off + len);
    const end = s.indexOf(0);
    return s.subarray(0, end < 0 ? len : end).toString('utf8');
  };
  for (let off = 0; off + UTMP_RECORD <= buf.length; off += UTMP_RECORD) {
    out.push({ type: buf.readInt16LE(off), pid: buf.readInt32LE(off + 4), line: str(off + 8, 32), user: str(off + 44, 32), host: str(off + 76, 256) });
  }
  return out;
}

async function utmpSessions(utmpPath: string, now: Date): Promise<OsSession[]> {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(utmpPath);
  } catch {
    return [];
  }
  const out: OsSession[] = [];
  for (const e of parseUtmp(buf)) {
    // A login whose process died without cleaning up utmp (a crash) is no session.
    if (e.type !== USER_PROCESS || !e.user || !fs.existsSync(`/proc/${e.pid}`)) continue;
    out.push({ id: e.line, user: e.user, idleSeconds: await idleOf(e, now), locked: false });
  }
  return out;
}

/** X11 sessions: `xprintidle` on the display; terminals: the time since the tty was last read (its atime). */
async function idleOf(e: UtmpEntry, now: Date): Promise<number | null> {
  const display = e.line.startsWith(':') ? e.line : e.host.startsWith(':') ? e.host : null;
  if (display) {
    try {
      const { stdout } = await run('xprintidle', [], { timeout: 3000, env: { ...process.env, DISPLAY: display } });
      return Math.floor(Number(stdout.trim()) / 1000);
    } catch {
      return null;
    }
  }
  try {
    const st = fs.statSync(`/dev/${e.line}`);
    return Math.max(0, Math.floor((now.getTime() - st.atimeMs) / 1000));
  } catch {
    return null;
  }
}

/** Tell the logged-in users (all terminals; the desktop too when notify-send works). */
export async function warnUsers(message: string): Promise<void> {
  await run('wall', [message], { timeout: 5000 }).catch(() => undefined);
  await run('notify-send', ['-u', 'critical', 'Stagedoor', message], { timeout: 5000 }).catch(() => undefined);
}

/** End the user's sessions (a release plan's forced logout): logind when it runs, else the terminal's processes. */
export async function logoutSession(session: string, user: string): Promise<void> {
  if (logindAvailable()) {
    await run('loginctl', ['terminate-session', session], { timeout: 5000 }).catch(() => run('loginctl', ['terminate-user', user], { timeout: 5000 }));
    return;
  }
  await run('pkill', ['-KILL', '-t', session], { timeout: 5000 }).catch(() => undefined);
}
