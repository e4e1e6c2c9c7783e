import { GRANT_TOKEN_PATTERN, type RefusalReason, type RoutedListener } from '@stagedoor/contract';
import { normaliseAddress } from '../addresses.ts';
import type { Log } from '../log.ts';
import { REFUSAL_MESSAGES, type Admit, type Admitted, type Refused } from './admission.ts';
import type { RoutedGrants } from './routed-grants.ts';

/** The broker's answer to a claim (broker-channel.ts); no answer in time is `claim-timeout`. */
export type Claim = (grantId: string, clientAddress: string, listener: RoutedListener) => Promise<{ ok: boolean; reason: RefusalReason | null; session?: number }>;

/** What the admitter tells the broker channel (the same reports as port forward). */
export interface RoutedReporter {
  /** `session`: the broker's number for it (from the claim), so a late report of it is told from a later session's. */
  sessionStarted(grantId: string, clientAddress: string, at: Date, session: number | undefined): void;
  sessionEnded(grantId: string, outcome: { reason: string; bytesUp: number; bytesDown: number }, at: Date, session: number | undefined): void;
  refused(port: number, clientAddress: string, reason: RefusalReason, grantId: string | null): void;
}

export interface AdmitterOptions {
  grants: RoutedGrants;
  claim: Claim;
  /** Why every new connection is refused now (fail closed, disabled), or null. */
  refusing: () => RefusalReason | null;
  reporter: RoutedReporter;
  /** The port a listener accepts on, named in refusal reports. */
  portOf: (listener: RoutedListener) => number;
  now: () => number;
  log: Log;
}

/**
 * The one grant check of every routed mode (admission.ts): the token's grant, the client address, the
 * connect-by time of a first use and the gateway's own state are checked here; single use and
 * reconnects are the broker's to decide, through a claim on the channel (fail closed: no answer, no
 * session). A refusal is reported to the broker with the listener's port, like port forward's.
 */
export function createAdmitter(opts: AdmitterOptions): Admit {
  const refuse = (listener: RoutedListener, client: string, reason: RefusalReason, grantId: string | null): Refused => {
    opts.log.info({ listener, client, reason, grant: grantId }, 'routed connection refused');
    opts.reporter.refused(opts.portOf(listener), client, reason, grantId);
    return { ok: false, reason, message: REFUSAL_MESSAGES[reason] };
  };

  return async (listener, token, clientAddress) => {
    const client = normaliseAddress(clientAddress);
    const presented = token.trim().toLowerCase();
    // Never hash or look up what cannot be a token (and never log it: it may be one).
    if (!GRANT_TOKEN_PATTERN.test(presented)) return refuse(listener, client, 'no-token', null);
    const entry = opts.grants.find(presented);
    if (!entry) {
      // Revoked here a while ago (expired unused, released, used through another gateway): say which.
      const gone = opts.grants.gone(presented);
      if (!gone) return refuse(listener, client, 'no-grant', null);
      return refuse(listener, client, client === normaliseAddress(gone.clientAddress) ? gone.reason : 'wrong-client', gone.grantId);
    }
    const grantId = entry.grant.id;
    if (client !== normaliseAddress(entry.grant.clientAddress)) return refuse(listener, client, 'wrong-client', grantId);
    const firstUse = !entry.usedHere && !entry.grant.inUse;
    if (firstUse && opts.now() >= entry.validUntilMs) return refuse(listener, client, 'expired', grantId);
    const refusing = opts.refusing();
    if (refusing) return refuse(listener, client, refusing, grantId);

    const answer = await opts.claim(grantId, client, listener);
    if (!answer.ok) return refuse(listener, client, answer.reason ?? 'claim-timeout', grantId);
    // Revoked while the broker answered (the answer and the revoke crossed): it is gone.
    if (!opts.grants.has(grantId)) return refuse(listener, client, 'revoked', grantId);

    const session = opts.grants.open(entry, client, opts.now(), answer.session);
    opts.log.info({ listener, grant: grantId, client, target: `${entry.grant.targetAddress}:${entry.grant.targetPort}` }, 'routed session started');
    opts.reporter.sessionStarted(grantId, client, new Date(session.startedAtMs), session.number);
    let capTimer: NodeJS.Timeout | null = null;
    if (entry.grant.sessionUntil) {
      capTimer = setTimeout(() => session.close('session-expired'), Math.max(0, Math.min(Date.parse(entry.grant.sessionUntil) - opts.now(), 2 ** 31 - 1)));
      capTimer.unref();
    }
    const admitted: Admitted = {
      ok: true,
      grantId,
      target: { host: entry.grant.targetAddress, port: entry.grant.targetPort },
      onClose: (close) => session.onClose(close),
      countBytes: (read) => {
        session.read = read;
      },
      ended: (outcome) => {
        if (!opts.grants.finish(session, outcome)) return;
        if (capTimer) clearTimeout(capTimer);
        opts.log.info({ listener, grant: grantId, ...outcome }, 'routed session ended');
        opts.reporter.sessionEnded(grantId, { reason: outcome.reason.slice(0, 200), bytesUp: outcome.bytesUp, bytesDown: outcome.bytesDown }, new Date(opts.now()), session.number);
      },
    };
    return admitted;
  };
}
