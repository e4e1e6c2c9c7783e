import type { DbOrTx } from '../../db/database.ts';
import type { TimerService } from '../../jobs/timers.service.ts';
import type { SessionEvent, SessionListener } from './types.ts';

/** The durable timer kind that carries a gateway session event to its listeners. */
export const SESSION_EVENT_KIND = 'gateway.session-event';

type Timers = Pick<TimerService, 'schedule' | 'handle' | 'fireNow'>;

/**
 * Session starts and ends that gateways report, delivered to the power and release plans at least
 * once: the report's transaction writes the event as a due timer (the outbox), and after the commit
 * this node runs it at once. A node that dies in between leaves the row to the timers job of any
 * node, so a disconnect is never lost. Listeners must be idempotent (at-least-once).
 */
export class SessionEventOutbox {
  readonly #listeners = new Set<SessionListener>();

  constructor(private readonly deps: { timers: Timers; onError: (err: unknown, event: SessionEvent) => void }) {
    deps.timers.handle(SESSION_EVENT_KIND, async (timer) => {
      const event = decode(timer.payload);
      for (const listener of this.#listeners) await listener(event);
    });
  }

  subscribe(listener: SessionListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** In the report's transaction. */
  async record(event: SessionEvent, tx: DbOrTx): Promise<void> {
    await this.deps.timers.schedule({ kind: SESSION_EVENT_KIND, key: keyOf(event), dueAt: event.at, payload: encode(event) }, tx);
  }

  /** After the commit: deliver now (a failure is retried by the timers job with backoff). */
  dispatch(events: readonly SessionEvent[]): void {
    void (async () => {
      for (const e of events) {
        await this.deps.timers.fireNow(SESSION_EVENT_KIND, keyOf(e)).catch((err: unknown) => this.deps.onError(err, e));
      }
    })();
  }
}

/** One timer per session start and end; a routed grant's later sessions (reconnects) are numbered. */
function keyOf(e: SessionEvent): string {
  return e.session && e.session > 1 ? `${e.grantId}:${e.session}:${e.type}` : `${e.grantId}:${e.type}`;
}

function encode(e: SessionEvent): Record<string, unknown> {
  return { ...e, at: e.at.toISOString() };
}

function decode(payload: Record<string, unknown>): SessionEvent {
  return { ...(payload as unknown as SessionEvent), at: new Date(payload.at as string) };
}
