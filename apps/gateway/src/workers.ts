import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RefusalReason } from '@stagedoor/contract';
import type { Log } from './log.ts';
import type { PortForwardOptions, PortGrant, Reporter } from './port-forward.ts';
import type { RelayOutcome } from './relay.ts';

/** What the gateway needs from its port-forward engine, in this process or spread over workers. */
export interface Forwarder {
  readonly grantCount: number;
  addGrant(grant: PortGrant): void;
  revoke(grantId: string, reason: string): void;
  replaceGrants(grants: PortGrant[]): void;
  sessions(): { grantId: string; bytesUp: number; bytesDown: number; startedAt: string; clientAddress: string }[];
  totalBytes(): { up: number; down: number };
  /** The grant is held and its port accepts connections — tests wait for it before dialling. */
  isReady(grantId: string): boolean;
  /** Call when `refuseAll()` may have changed (fail closed, disabled). */
  refusalChanged?(reason: RefusalReason | null): void;
  close(): void;
}

/** Messages between the gateway process and its relay workers (structured clone over the IPC channel). */
export type ToWorker =
  | { t: 'grant'; grant: PortGrant }
  | { t: 'revoke'; grantId: string; reason: string }
  | { t: 'replace'; grants: PortGrant[] }
  | { t: 'refuse'; reason: RefusalReason | null };
export type FromWorker =
  | { t: 'started'; grantId: string; client: string; at: number }
  | { t: 'ended'; grantId: string; outcome: RelayOutcome; at: number }
  | { t: 'refused'; port: number; client: string; reason: RefusalReason; grantId: string | null }
  | { t: 'listening'; grantId: string }
  | { t: 'stats'; sessions: ReturnType<Forwarder['sessions']>; grants: number; bytes: { up: number; down: number } };
/** A worker sends what one event-loop turn produced as one message (one IPC write, not one per event). */
export type FromWorkerBatch = FromWorker[];

const WORKER_ENTRY = path.join(path.dirname(fileURLToPath(import.meta.url)), '../bin/relay-worker.js');

interface Worker {
  proc: ChildProcess;
  stats: Extract<FromWorker, { t: 'stats' }>;
  startedAt: number;
}

/** A worker that lived this long before dying was not crash-looping: its next restart is quick again. */
const STABLE_MS = 60_000;

/**
 * Several relay processes. Node 20 has no SO_REUSEPORT, but port-forward mode does not need it:
 * every grant has its own port, so each grant (its listener and its one session) belongs to one
 * worker, chosen by port. Connection setup, the JavaScript-bound part, then runs on every core;
 * the gateway process keeps the broker channel and only routes grants and reports. A worker that
 * dies is started again and given its grants back; the sessions it carried are lost, and the
 * broker's reconciliation closes them. A worker that keeps dying (a fault it meets at start, or
 * again and again) is restarted after a delay that doubles up to `respawnBackoffMs.max`, not in a
 * tight loop that would burn the CPU the other workers relay with and flood the log.
 */
export class WorkerPool implements Forwarder {
  readonly #workers: Worker[] = [];
  readonly #grants = new Map<string, PortGrant>();
  /** Revoked grants whose session is still closing in a worker: its end report still needs the grant. */
  readonly #ended = new Map<string, PortGrant>();
  /** Grants whose port their worker has opened (a subset of `#grants`). */
  readonly #listening = new Set<string>();
  #refusal: RefusalReason | null = 'fail-closed';
  #closed = false;
  /** Deaths in a row of each worker that did not live `STABLE_MS`. */
  readonly #crashes: number[] = [];
  readonly #respawnTimers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly count: number,
    private readonly opts: {
      options: Omit<PortForwardOptions, 'reporter' | 'refuseAll' | 'log' | 'now' | 'proxyProtocol'> & { proxyProtocol: { enabled: boolean; sources: string[] } };
      reporter: Reporter;
      log: Log;
      /** Delay before restarting a dead worker: `min` after the first death, doubling per death in a row, at most `max`. */
      respawnBackoffMs?: { min: number; max: number };
    },
  ) {
    for (let i = 0; i < count; i++) this.#workers.push(this.#spawn(i));
  }

  get grantCount(): number {
    return this.#workers.reduce((n, w) => n + w.stats.grants, 0);
  }

  #spawn(index: number): Worker {
    // A small young generation: a worker's garbage is short-lived, and idle memory is a measured figure.
    const proc = fork(WORKER_ENTRY, [JSON.stringify({ ...this.opts.options, index })], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced', execArgv: [...process.execArgv, '--max-semi-space-size=2'] });
    const worker: Worker = { proc, stats: { t: 'stats', sessions: [], grants: 0, bytes: { up: 0, down: 0 } }, startedAt: Date.now() };
    proc.on('message', (batch: FromWorkerBatch) => {
      for (const m of batch) this.#fromWorker(worker, m);
    });
    proc.on('exit', (code, signal) => {
      if (this.#closed) return;
      const { min, max } = this.opts.respawnBackoffMs ?? { min: 250, max: 30_000 };
      const crashes = Date.now() - worker.startedAt >= STABLE_MS ? 0 : (this.#crashes[index] ?? 0);
      this.#crashes[index] = crashes + 1;
      const retryInMs = Math.min(max, min * 2 ** Math.min(crashes, 30));
      this.opts.log.error({ worker: index, code, signal, crashesInARow: crashes + 1, retryInMs }, 'relay worker died; starting it again after a delay (its sessions are lost)');
      // Until then its grants wait here (messages to a dead worker are dropped) and are handed over whole.
      const timer = setTimeout(() => {
        this.#respawnTimers.delete(timer);
        if (this.#closed) return;
        const replacement = this.#spawn(index);
        this.#workers[index] = replacement;
        this.#send(replacement, { t: 'refuse', reason: this.#refusal });
        this.#send(replacement, { t: 'replace', grants: [...this.#grants.values()].filter((g) => this.#owner(g.port) === index) });
      }, retryInMs);
      this.#respawnTimers.add(timer);
    });
    this.#send(worker, { t: 'refuse', reason: this.#refusal });
    return worker;
  }

  #owner(port: number): number {
    return port % this.count;
  }

  #send(w: Worker, m: ToWorker): void {
    if (w.proc.connected) w.proc.send(m);
  }

  #fromWorker(w: Worker, m: FromWorker): void {
    switch (m.t) {
      // Workers name the grant; the grant itself is here (it was sent from here).
      case 'started': {
        const grant = this.#grants.get(m.grantId) ?? this.#ended.get(m.grantId); // revoked while the report was on its way: still reported
        return grant && this.opts.reporter.sessionStarted(grant, m.client, new Date(m.at));
      }
      case 'ended': {
        const grant = this.#grants.get(m.grantId) ?? this.#ended.get(m.grantId);
        this.#grants.delete(m.grantId);
        this.#listening.delete(m.grantId);
        this.#ended.delete(m.grantId);
        return grant && this.opts.reporter.sessionEnded(grant, m.outcome, new Date(m.at));
      }
      case 'refused':
        return this.opts.reporter.refused(m.port, m.client, m.reason, m.grantId);
      case 'listening':
        if (this.#grants.has(m.grantId)) this.#listening.add(m.grantId);
        return;
      case 'stats':
        w.stats = m;
    }
  }

  isReady(grantId: string): boolean {
    return this.#listening.has(grantId);
  }

  addGrant(grant: PortGrant): void {
    this.#grants.set(grant.id, grant);
    this.#send(this.#workers[this.#owner(grant.port)]!, { t: 'grant', grant });
  }

  revoke(grantId: string, reason: string): void {
    const g = this.#grants.get(grantId);
    if (!g) return;
    this.#grants.delete(grantId);
    this.#listening.delete(grantId);
    this.#closing(g);
    this.#send(this.#workers[this.#owner(g.port)]!, { t: 'revoke', grantId, reason });
  }

  /** Keep a grant that is going away until its worker reports its session's end (bounded: an unused grant never reports one). */
  #closing(g: PortGrant): void {
    this.#ended.set(g.id, g);
    if (this.#ended.size > 10_000) this.#ended.delete(this.#ended.keys().next().value!);
  }

  replaceGrants(grants: PortGrant[]): void {
    const keep = new Set(grants.map((g) => g.id));
    for (const [id, g] of this.#grants) if (!keep.has(id)) this.#closing(g); // a worker closes its session and reports the end
    this.#grants.clear();
    for (const id of this.#listening) if (!keep.has(id)) this.#listening.delete(id);
    for (const g of grants) this.#grants.set(g.id, g);
    this.#workers.forEach((w, i) => this.#send(w, { t: 'replace', grants: grants.filter((g) => this.#owner(g.port) === i) }));
  }

  refusalChanged(reason: RefusalReason | null): void {
    if (reason === this.#refusal) return;
    this.#refusal = reason;
    for (const w of this.#workers) this.#send(w, { t: 'refuse', reason });
  }

  /** From the workers' last stats (sent every 2.5 s). */
  sessions(): ReturnType<Forwarder['sessions']> {
    return this.#workers.flatMap((w) => w.stats.sessions);
  }

  totalBytes(): { up: number; down: number } {
    return this.#workers.reduce((t, w) => ({ up: t.up + w.stats.bytes.up, down: t.down + w.stats.bytes.down }), { up: 0, down: 0 });
  }

  close(): void {
    this.#closed = true;
    for (const t of this.#respawnTimers) clearTimeout(t);
    for (const w of this.#workers) w.proc.kill('SIGTERM');
  }
}
