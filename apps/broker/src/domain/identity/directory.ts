/**
 * The seams to external sign-in systems (STYLE habit 4). `providers/directory/` implements them
 * against real servers (LDAP/AD with ldapts, RADIUS over UDP); the login flow sees only these types.
 */

/** A user entry as a directory describes it. */
export interface DirectoryUser {
  dn: string;
  /** The directory's canonical login name (sAMAccountName, uid …): the Stagedoor username. */
  username: string;
  displayName: string | null;
  email: string | null;
  /** AD `userAccountControl` ACCOUNTDISABLE, or the like: the directory refuses this account. */
  disabled: boolean;
}

export type PasswordVerdict = { ok: true; groups: string[] } | { ok: false; reason: string };

export interface DirectoryTestReport {
  /** The URL that answered. */
  url: string;
  user?: { dn: string; username: string; groups: string[] } | null;
}

export interface Directory {
  /**
   * Find the user that `login` names, or null when the directory has no such user (or more than
   * one). Throws `UnavailableError` naming the server when no URL answers or the service bind fails.
   */
  findUser(login: string): Promise<DirectoryUser | null>;
  /** Bind as the user with `password`; on success, the DNs of every group the user is in, nested ones included. */
  verifyPassword(user: DirectoryUser, password: string): Promise<PasswordVerdict>;
  /** Connect, bind as the service account and, given a login, look that user and their groups up. */
  test(login?: string): Promise<DirectoryTestReport>;
}

/** One RADIUS-style exchange: accepted, rejected, or a challenge to answer (push prompt, one-time code). */
export type MfaAnswer =
  | { kind: 'accept'; server: string; message: string | null }
  | { kind: 'reject'; server: string; message: string | null }
  | { kind: 'challenge'; server: string; message: string | null; state: string | null };

export interface MfaRequest {
  username: string;
  /** The password, or the answer to a challenge. */
  response: string;
  /** The challenge's `State` (base64) when answering one. */
  state?: string | null;
  /** `host:port` that sent the challenge: the answer must go back to it, not to a failover server. */
  server?: string | null;
}

/**
 * An external second-factor (or primary) verifier such as a RADIUS server in front of Okta, Duo or
 * an OTP service. Throws `UnavailableError` naming the server when it cannot get a trustworthy answer.
 */
export interface MfaVerifier {
  check(request: MfaRequest): Promise<MfaAnswer>;
  /** Send a request for `username` (a made-up one when absent): any authentic answer proves reachability and the secret. */
  test(username?: string): Promise<MfaAnswer>;
}

/**
 * DNs compare case-insensitively and ignore spaces around separators; group mappings are stored in
 * this form so that `CN=Editors, OU=Groups` from one server matches `cn=editors,ou=groups` from another.
 */
export function normalizeDn(dn: string): string {
  return dn
    .trim()
    .replace(/\s*([,=+])\s*/g, '$1')
    .toLowerCase();
}
