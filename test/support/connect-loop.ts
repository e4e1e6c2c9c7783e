import { randomUUID } from 'node:crypto';
import type { MintedUser } from './studio.ts';

/** One answer of a connect that reached a definite outcome. */
export interface ConnectAnswer {
  user: MintedUser;
  key: string;
  status: number;
  /** `Idempotent-Replayed` header: `true` when a retry got an earlier attempt's connection back. */
  replayed: string | null;
  connectionId?: string;
  workstationId?: string;
  /** When the answer came (ms since the epoch). */
  at: number;
  /** How many attempts it took (1 = no retry). */
  attempts: number;
}

export interface StormStats {
  /** Every definite connect answer (2xx or 409 no_desktop_available), in order of arrival. */
  connects: ConnectAnswer[];
  /** The connect each user ended the storm with. */
  finals: Map<string, ConnectAnswer>;
  /** Releases answered 204, by connection id. */
  released: Set<string>;
  /** Failed attempts (then retried) by what they got: an HTTP status or `network`. */
  failures: Map<string, number>;
  /** Answers no client should ever get (a 4xx other than the expected ones): the test fails on any. */
  unexpected: string[];
}

/**
 * A connect storm as real clients make it: each user connects, holds the desktop a moment,
 * releases it, and again, until `stop()`; then connects one last time and keeps that desktop.
 * A failed attempt (a 5xx, a reset, a timeout) is retried — on the other node, as a load balancer
 * would send it — with the same `Idempotency-Key`; a release is retried until it is answered.
 * With `loseAnswers` (a probability), a connect's first 2xx answer is thrown away as if it never
 * arrived, and retried: the retry must get the same connection back (`Idempotent-Replayed: true`).
 */
export function startConnectStorm(opts: { bases: string[]; users: MintedUser[]; poolId: string; retryMs?: number; loseAnswers?: number }) {
  const stats: StormStats = { connects: [], finals: new Map(), released: new Set(), failures: new Map(), unexpected: [] };
  let stopping = false;
  let aborted = false;
  const retryMs = opts.retryMs ?? 250;
  const loseAnswers = opts.loseAnswers ?? 0;
  const pause = (min: number, max: number) => new Promise((r) => setTimeout(r, min + Math.random() * (max - min)));
  const fail = (what: string) => stats.failures.set(what, (stats.failures.get(what) ?? 0) + 1);

  async function connect(user: MintedUser, i: number): Promise<ConnectAnswer> {
    const key = randomUUID();
    let lost: string | undefined;
    for (let attempt = 1; ; attempt++) {
      if (aborted) throw new Error('storm aborted');
      const base = opts.bases[(i + attempt) % opts.bases.length]!;
      try {
        const res = await fetch(`${base}/api/v1/connections`, {
          method: 'POST',
          headers: { authorization: `Bearer ${user.token}`, 'content-type': 'application/json', 'idempotency-key': key },
          body: JSON.stringify({ poolId: opts.poolId }),
          signal: AbortSignal.timeout(30_000),
        });
        const body = (await res.json().catch(() => ({}))) as { id?: string; workstation?: { id: string }; error?: { code: string; message: string } };
        const ok = res.status === 200 || res.status === 201;
        if (ok && lost === undefined && Math.random() < loseAnswers) {
          // The answer "never arrived" (a reset load balancer, a client that timed out): retry it.
          lost = body.id;
          fail('lost-answer');
          await pause(retryMs, retryMs * 2);
          continue;
        }
        if (ok && lost !== undefined && (body.id !== lost || res.headers.get('idempotent-replayed') !== 'true')) {
          stats.unexpected.push(`connect ${user.username}: the retry of a lost answer (${lost}) got ${res.status} ${body.id} (replayed: ${res.headers.get('idempotent-replayed')})`);
        }
        if (ok || (res.status === 409 && body.error?.code === 'no_desktop_available')) {
          const answer: ConnectAnswer = { user, key, status: res.status, replayed: res.headers.get('idempotent-replayed'), connectionId: body.id, workstationId: body.workstation?.id, at: Date.now(), attempts: attempt };
          stats.connects.push(answer);
          return answer;
        }
        if (res.status < 500) stats.unexpected.push(`connect ${user.username} → ${res.status} ${JSON.stringify(body)}`);
        fail(String(res.status));
      } catch {
        fail('network');
      }
      await pause(retryMs, retryMs * 2);
    }
  }

  async function release(user: MintedUser, connectionId: string, i: number): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      if (aborted) throw new Error('storm aborted');
      const base = opts.bases[(i + attempt) % opts.bases.length]!;
      try {
        const res = await fetch(`${base}/api/v1/connections/${connectionId}`, { method: 'DELETE', headers: { authorization: `Bearer ${user.token}` }, signal: AbortSignal.timeout(30_000) });
        const text = await res.text();
        if (res.status === 204) {
          stats.released.add(connectionId);
          return;
        }
        if (res.status < 500) stats.unexpected.push(`release ${user.username} ${connectionId} → ${res.status} ${text}`);
        fail(String(res.status));
      } catch {
        fail('network');
      }
      await pause(retryMs, retryMs * 2);
    }
  }

  const done = Promise.all(
    opts.users.map(async (user, i) => {
      await pause(0, 300);
      while (!stopping) {
        const answer = await connect(user, i);
        if (answer.connectionId) {
          await pause(50, 250);
          await release(user, answer.connectionId, i);
        }
        await pause(100, 400);
      }
      stats.finals.set(user.id, await connect(user, i));
    }),
  );

  return {
    stats,
    /** Definite connect answers with a desktop so far. */
    get connected(): number {
      return stats.connects.filter((c) => c.connectionId).length;
    },
    /** Let every user connect a last time and keep the desktop; resolves when all have. */
    stop: async () => {
      stopping = true;
      await done;
      return stats;
    },
    /** Give up at once (a failed test's clean-up): retries stop, nothing more is sent. */
    abort: async () => {
      stopping = aborted = true;
      await done.catch(() => undefined);
    },
  };
}
