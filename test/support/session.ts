/** A signed-in browser-like session: the cookie and the CSRF token that goes with it. */
export interface Session {
  cookie: string;
  csrf: string;
  userId: string;
}

/** Headers for a cookie-authenticated change (session cookie + CSRF token). */
export function as(session: Session): Record<string, string> {
  return { cookie: session.cookie, 'x-csrf-token': session.csrf };
}
