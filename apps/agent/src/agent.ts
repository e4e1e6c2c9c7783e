import os from 'node:os';
import type { AgentNoticeView, AgentReportResult } from '@stagedoor/contract';
import { diff, NOBODY, type AgentEventOut, type Observation, type Reported } from './observe.ts';

export const AGENT_VERSION = '0.1.0';
/** Events kept while the broker cannot be reached (the oldest are dropped beyond this). */
const MAX_QUEUE = 100;

export interface AgentOptions {
  brokerUrl: string;
  token: string;
  pollSeconds: number;
  idleThresholdSeconds: number;
  observe: (now: Date) => Promise<Observation>;
  warn: (message: string) => Promise<void>;
  logout: (session: string, user: string) => Promise<void>;
  log: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
  now?: () => Date;
  fetch?: typeof fetch;
  os?: 'linux' | 'windows' | 'other';
}

/**
 * The workstation agent: every `pollSeconds` it looks at the OS, queues what changed, and sends the
 * queue (or a heartbeat when due). The broker being away is normal: the queue waits, retries back
 * off up to a minute, and nothing here throws out of the loop.
 */
export class Agent {
  #reported: Reported = NOBODY;
  #queue: AgentEventOut[] = [];
  #lastSent = 0;
  #heartbeatMs = 60_000;
  #failures = 0;
  #nextTry = 0;
  #handled = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  readonly #now: () => Date;
  readonly #fetch: typeof fetch;

  constructor(private readonly opts: AgentOptions) {
    this.#now = opts.now ?? (() => new Date());
    this.#fetch = opts.fetch ?? fetch;
  }

  start(): this {
    const loop = async () => {
      await this.tick();
      if (!this.#stopped) this.#timer = setTimeout(loop, this.opts.pollSeconds * 1000);
    };
    void loop();
    return this;
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  /** One poll: observe, queue the changes, send when there is something to say (or a heartbeat is due). */
  async tick(): Promise<void> {
    const now = this.#now();
    try {
      const observed = await this.opts.observe(now);
      const { events, next } = diff(this.#reported, observed, this.opts.idleThresholdSeconds, now);
      this.#reported = next;
      for (const e of events) this.opts.log('info', `session ${e.type}`, { user: e.user, session: e.session, idleSeconds: e.idleSeconds });
      this.#queue.push(...events);
      if (this.#queue.length > MAX_QUEUE) this.#queue.splice(0, this.#queue.length - MAX_QUEUE);
    } catch (err) {
      this.opts.log('warn', 'could not read the sessions', { err: String(err) });
    }
    const heartbeatDue = now.getTime() - this.#lastSent >= this.#heartbeatMs;
    if ((this.#queue.length || heartbeatDue) && now.getTime() >= this.#nextTry) await this.#send(now);
  }

  async #send(now: Date): Promise<void> {
    const batch = this.#queue.slice(0, MAX_QUEUE);
    try {
      const res = await this.#fetch(new URL('/api/v1/agent/events', this.opts.brokerUrl), {
        method: 'POST',
        headers: { authorization: `Bearer ${this.opts.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ agentVersion: AGENT_VERSION, os: this.opts.os ?? 'linux', hostname: os.hostname(), events: batch.length ? batch : [{ type: 'heartbeat', at: now.toISOString(), user: this.#reported.user }] }),
        signal: AbortSignal.timeout(15_000),
      });
      if (res.status === 401) throw new Error('the broker does not know this agent token (rotated?)');
      if (res.status === 400) {
        // A report the broker refuses would be refused forever: drop it, say so, carry on.
        this.opts.log('error', 'the broker refused a report; dropping it', { body: await res.text() });
        this.#queue.splice(0, batch.length);
        return;
      }
      if (!res.ok) throw new Error(`broker answered ${res.status}`);
      const answer = (await res.json()) as AgentReportResult;
      this.#queue.splice(0, batch.length);
      this.#lastSent = now.getTime();
      this.#heartbeatMs = Math.max(5, answer.heartbeatSeconds) * 1000;
      if (this.#failures) this.opts.log('info', 'broker reachable again', { after: this.#failures });
      this.#failures = 0;
      this.#nextTry = 0;
      if (answer.notice) await this.#notice(answer.notice);
    } catch (err) {
      this.#failures++;
      const backoff = Math.min(60_000, 1000 * 2 ** Math.min(this.#failures - 1, 6)) * (0.5 + Math.random() / 2);
      this.#nextTry = now.getTime() + backoff;
      this.opts.log('warn', 'could not report to the broker; will retry', { err: err instanceof Error ? err.message : String(err), retryInMs: Math.round(backoff), queued: this.#queue.length });
    }
  }

  /** A release plan's warning (shown once) or forced logout (done once). */
  async #notice(n: AgentNoticeView): Promise<void> {
    if (this.#handled.has(n.id)) return;
    this.#handled.add(n.id);
    try {
      if (n.kind === 'warn') await this.opts.warn(n.message);
      else if (this.#reported.user && this.#reported.session) {
        await this.opts.warn(n.message);
        await this.opts.logout(this.#reported.session, this.#reported.user);
      }
      this.opts.log('info', `notice ${n.kind}`, { id: n.id });
    } catch (err) {
      this.opts.log('warn', `could not carry out the ${n.kind} notice`, { err: String(err) });
    }
  }
}
