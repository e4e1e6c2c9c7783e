import { createHash, timingSafeEqual } from 'node:crypto';
import type { ChannelGrant, RefusalReason } from '@stagedoor/contract';

/** A routed-mode grant: no port; found by the SHA-256 of the token the client presents (ADR 0017). */
export type RoutedGrant = ChannelGrant & { mode: 'routed'; tokenHash: string };
export function isRoutedGrant(g: ChannelGrant): g is RoutedGrant {
  return g.mode === 'routed' && g.tokenHash !== null;
}

/** SHA-256 (hex) of a token's lowercase form: what the broker sends as `tokenHash`. */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token.toLowerCase(), 'utf8').digest('hex');
}

export interface RoutedEntry {
  grant: RoutedGrant;
  readonly hash: Buffer;
  validUntilMs: number;
  /** A session of this grant started here (reconnects are then the broker's to allow, not connect-by's). */
  usedHere: boolean;
  readonly live: Set<LiveSession>;
}

export type Bytes = { bytesUp: number; bytesDown: number };

/** A grant the broker revoked here, remembered so a late client is told why, not "not known". */
export interface GoneGrant {
  grantId: string;
  clientAddress: string;
  reason: RefusalReason;
  readonly atMs: number;
  readonly hash: Buffer;
}

/**
 * How long, and how many, revoked grants are remembered. An hour covers a connection file opened
 * again after lunch; the cap bounds memory (about 200 bytes each) whatever the grant rate.
 */
export const GONE_MEMORY_MS = 60 * 60 * 1000;
export const GONE_MEMORY_MAX = 20_000;

/** One session of a routed grant, from its claim to its end. */
export class LiveSession {
  #close: ((reason: string) => void) | null = null;
  #closeReason: string | null = null;
  read: (() => Bytes) | null = null;
  ended = false;
  constructor(
    readonly entry: RoutedEntry,
    readonly clientAddress: string,
    readonly startedAtMs: number,
    /** The broker's number for this session of the grant (undefined from a broker before the field). */
    readonly number?: number,
  ) {}

  /** The mode's way to close it; a close asked for before it was registered happens at once. */
  onClose(close: (reason: string) => void): void {
    this.#close = close;
    if (this.#closeReason !== null && !this.ended) close(this.#closeReason);
  }

  close(reason: string): void {
    if (this.ended) return;
    this.#closeReason ??= reason;
    this.#close?.(reason);
  }

  bytes(): Bytes {
    return this.read?.() ?? { bytesUp: 0, bytesDown: 0 };
  }
}

/**
 * The routed grants a gateway holds, from the broker's welcome, grant and revoke messages, keyed by
 * their token hash. No token is kept here; a presented token is hashed and the hashes are compared
 * in constant time, so a lookup does not tell how much of a guess was right.
 */
export class RoutedGrants {
  readonly #byHash = new Map<string, RoutedEntry>();
  readonly #byId = new Map<string, RoutedEntry>();
  readonly #ended = { up: 0, down: 0 };
  readonly #gone = new Map<string, GoneGrant>();

  constructor(private readonly now: () => number = Date.now) {}

  get size(): number {
    return this.#byId.size;
  }

  /** The welcome after a (re)connect: the broker's set replaces ours; sessions of grants it no longer has are closed. */
  replace(grants: RoutedGrant[]): void {
    const want = new Set(grants.map((g) => g.id));
    for (const id of [...this.#byId.keys()]) if (!want.has(id)) this.revoke(id, 'revoked: not live at the broker');
    for (const g of grants) {
      const held = this.#byId.get(g.id);
      if (held) {
        held.grant = g;
        held.validUntilMs = Date.parse(g.validUntil);
      } else this.add(g);
    }
  }

  add(grant: RoutedGrant): void {
    if (this.#byId.has(grant.id)) return;
    const entry: RoutedEntry = { grant, hash: Buffer.from(grant.tokenHash, 'hex'), validUntilMs: Date.parse(grant.validUntil), usedHere: false, live: new Set() };
    this.#byId.set(grant.id, entry);
    this.#byHash.set(grant.tokenHash, entry);
  }

  /** The broker revoked the grant (released, expired, closed): forget it and close its sessions at once. */
  revoke(grantId: string, reason: string): void {
    const entry = this.#byId.get(grantId);
    if (!entry) return;
    this.#byId.delete(grantId);
    if (this.#byHash.get(entry.grant.tokenHash) === entry) this.#byHash.delete(entry.grant.tokenHash);
    this.#remember(entry, goneReason(entry, reason, this.now()));
    const why = reason.startsWith('revoked') ? reason : `revoked: ${reason}`;
    for (const s of entry.live) s.close(why);
  }

  /** Why the grant whose token this is was revoked here (within the memory), or null. */
  gone(token: string): GoneGrant | null {
    this.#forgetOld();
    const hash = tokenHash(token);
    const gone = this.#gone.get(hash);
    if (!gone) return null;
    return timingSafeEqual(gone.hash, Buffer.from(hash, 'hex')) ? gone : null;
  }

  #remember(entry: RoutedEntry, reason: RefusalReason): void {
    this.#forgetOld();
    const hash = entry.grant.tokenHash;
    this.#gone.delete(hash); // re-inserted last, so the map stays in time order
    this.#gone.set(hash, { grantId: entry.grant.id, clientAddress: entry.grant.clientAddress, reason, atMs: this.now(), hash: entry.hash });
    while (this.#gone.size > GONE_MEMORY_MAX) this.#gone.delete(this.#gone.keys().next().value!);
  }

  #forgetOld(): void {
    const before = this.now() - GONE_MEMORY_MS;
    for (const [hash, g] of this.#gone) {
      if (g.atMs > before) break;
      this.#gone.delete(hash);
    }
  }

  has(grantId: string): boolean {
    return this.#byId.has(grantId);
  }

  /** The grant whose token this is, or null. */
  find(token: string): RoutedEntry | null {
    const hash = tokenHash(token);
    const entry = this.#byHash.get(hash);
    if (!entry) return null;
    // The map found it by its hash; the comparison that decides is the constant-time one.
    return timingSafeEqual(entry.hash, Buffer.from(hash, 'hex')) ? entry : null;
  }

  /** A claimed session begins. */
  open(entry: RoutedEntry, clientAddress: string, startedAtMs: number, number?: number): LiveSession {
    const s = new LiveSession(entry, clientAddress, startedAtMs, number);
    entry.usedHere = true;
    entry.live.add(s);
    return s;
  }

  /** A session is over: its bytes move to the totals. False when it had ended already. */
  finish(s: LiveSession, bytes: Bytes): boolean {
    if (s.ended) return false;
    s.ended = true;
    s.entry.live.delete(s);
    this.#ended.up += bytes.bytesUp;
    this.#ended.down += bytes.bytesDown;
    return true;
  }

  /** The sessions relaying now, with their byte counts (for the heartbeat and the hello, beside port forward's). */
  sessions(): { grantId: string; bytesUp: number; bytesDown: number; startedAt: string; clientAddress: string; session?: number }[] {
    const out = [];
    for (const e of this.#byId.values()) {
      for (const s of e.live) out.push({ grantId: e.grant.id, ...s.bytes(), startedAt: new Date(s.startedAtMs).toISOString(), clientAddress: s.clientAddress, ...(s.number ? { session: s.number } : {}) });
    }
    return out;
  }

  /** Bytes relayed since start, ended sessions included. */
  totalBytes(): { up: number; down: number } {
    let { up, down } = this.#ended;
    for (const e of this.#byId.values()) {
      for (const s of e.live) {
        const b = s.bytes();
        up += b.bytesUp;
        down += b.bytesDown;
      }
    }
    return { up, down };
  }

  /** Shutdown: close every session. */
  close(): void {
    for (const e of this.#byId.values()) for (const s of e.live) s.close('gateway-shutdown');
  }
}

/**
 * What a late client is told about a revoked grant. The broker revokes an unused grant past its
 * connect-by as `closed` (it is no longer live there), so the gateway, which knows the connect-by,
 * says it expired.
 */
export function goneReason(entry: RoutedEntry, reason: string, nowMs: number): RefusalReason {
  if (reason.startsWith('revoked')) return 'revoked';
  if (reason === 'used-elsewhere' || reason === 'used') return 'used';
  if (!entry.usedHere && !entry.grant.inUse && nowMs >= entry.validUntilMs) return 'expired';
  return 'closed';
}
