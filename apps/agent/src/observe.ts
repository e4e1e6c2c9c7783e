/** What the agent sees on the machine at one moment: the user sessions, pure data. */
export interface OsSession {
  /** logind session id, utmp line (`pts/0`, `:0`) or WTS session id. */
  id: string;
  user: string;
  /** Seconds since the last keyboard or mouse input in this session (null: cannot tell). */
  idleSeconds: number | null;
  locked: boolean;
  /** A remote session whose client went away (Windows `Disc`); the user is still logged in. */
  disconnected?: boolean;
}

export interface Observation {
  sessions: OsSession[];
}

export type AgentEventOut = {
  type: 'login' | 'logout' | 'lock' | 'unlock' | 'idle' | 'active' | 'disconnect' | 'reconnect';
  user: string;
  session: string;
  idleSeconds?: number;
  at: string;
};

/** The state the agent reported last, so it sends changes only. */
export interface Reported {
  user: string | null;
  session: string | null;
  idle: boolean;
  locked: boolean;
  disconnected: boolean;
}

export const NOBODY: Reported = { user: null, session: null, idle: false, locked: false, disconnected: false };

/**
 * The machine's user session, as the broker sees one: of several sessions (console and ssh, say),
 * the most recently used one speaks for the machine.
 */
export function primarySession(o: Observation): OsSession | undefined {
  return [...o.sessions].sort((a, b) => (a.idleSeconds ?? Infinity) - (b.idleSeconds ?? Infinity))[0];
}

/** Pure: what changed since the last report → the events to send, and the new reported state. */
export function diff(prev: Reported, o: Observation, idleThresholdSeconds: number, now: Date): { events: AgentEventOut[]; next: Reported } {
  const s = primarySession(o);
  const at = now.toISOString();
  const events: AgentEventOut[] = [];
  if (!s) {
    if (prev.user) events.push({ type: 'logout', user: prev.user, session: prev.session ?? '', at });
    return { events, next: NOBODY };
  }
  const idle = s.idleSeconds !== null && s.idleSeconds >= idleThresholdSeconds;
  const disconnected = s.disconnected === true;
  if (prev.user !== s.user) {
    if (prev.user) events.push({ type: 'logout', user: prev.user, session: prev.session ?? '', at });
    events.push({ type: 'login', user: s.user, session: s.id, at });
    if (s.locked) events.push({ type: 'lock', user: s.user, session: s.id, at });
    if (disconnected) events.push({ type: 'disconnect', user: s.user, session: s.id, at });
    if (idle) events.push({ type: 'idle', user: s.user, session: s.id, idleSeconds: s.idleSeconds!, at });
    return { events, next: { user: s.user, session: s.id, idle, locked: s.locked, disconnected } };
  }
  if (disconnected !== prev.disconnected) events.push({ type: disconnected ? 'disconnect' : 'reconnect', user: s.user, session: s.id, at });
  if (s.locked !== prev.locked) events.push({ type: s.locked ? 'lock' : 'unlock', user: s.user, session: s.id, at });
  if (idle !== prev.idle) events.push(idle ? { type: 'idle', user: s.user, session: s.id, idleSeconds: s.idleSeconds!, at } : { type: 'active', user: s.user, session: s.id, at });
  return { events, next: { user: s.user, session: s.id, idle, locked: s.locked, disconnected } };
}
