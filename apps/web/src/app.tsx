import { useCallback, useEffect, useRef, useState, type ReactNode } from 'react';
import { ApiError, SIGNED_OUT, get, post, setCsrfToken } from './api/client.ts';
import { useLiveEvents } from './api/events.ts';
import { SessionContext, isStaff, type SessionInfo } from './api/session.ts';
import type { Me } from './api/types.ts';
import { LoginPage } from './pages/login.tsx';
import { PortalPage } from './pages/portal.tsx';
import { ROUTES, routeFor, useHashRoute } from './routes.tsx';

/** The shell: who is signed in, the navigation their role allows, and the page of the hash route. */
export function App(): ReactNode {
  const [session, setSession] = useState<SessionInfo | null | 'loading'>('loading');
  const [endSessionUrl, setEndSessionUrl] = useState<string | null>(null);
  const load = useCallback(async () => {
    try {
      const me = await get<Me>('/api/v1/me');
      setCsrfToken(me.csrfToken);
      setSession({ user: me.user, permissions: me.permissions ?? [] });
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) setSession(null);
      else throw err;
    }
  }, []);
  useEffect(() => {
    void load();
  }, [load]);
  useEffect(() => {
    const out = () => setSession(null);
    window.addEventListener(SIGNED_OUT, out);
    return () => window.removeEventListener(SIGNED_OUT, out);
  }, []);

  if (session === 'loading') return <p className="loading">Loading…</p>;
  if (!session) return <LoginPage onSignedIn={() => void load()} endSessionUrl={endSessionUrl} />;
  return (
    <SessionContext.Provider value={session}>
      <Shell
        session={session}
        onSignOut={async () => {
          // Signed in through an IdP that publishes end_session_endpoint: offer to sign out there too.
          const end = await get<{ url: string | null }>('/api/v1/auth/sso/end-session').catch(() => ({ url: null }));
          await post('/api/v1/auth/logout').catch(() => undefined);
          setEndSessionUrl(end.url);
          setCsrfToken(null);
          setSession(null);
        }}
      />
    </SessionContext.Provider>
  );
}

function Shell(props: { session: SessionInfo; onSignOut: () => void }): ReactNode {
  const { session } = props;
  const path = useHashRoute();
  const live = useLiveEvents(true);
  const allowed = ROUTES.filter((r) => !r.permission || session.permissions.includes(r.permission));
  const route = routeFor(path, allowed, session.permissions);
  const staff = isStaff(session);
  // A new page: its title, and the focus at its start so that keyboard and screen-reader users land there.
  const first = useRef(true);
  useEffect(() => {
    document.title = `${route?.title ?? 'My desktops'} · Stagedoor`;
    if (first.current) first.current = false;
    else document.getElementById('main')?.focus();
  }, [route]);
  return (
    <div className={`shell${staff ? ' staff' : ''}`}>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header>
        <span className="brand">Stagedoor</span>
        <span className="who">
          {session.user.displayName ?? session.user.username} <span className="role">({session.user.role})</span>
        </span>
        <button type="button" className="secondary" onClick={props.onSignOut}>
          Sign out
        </button>
      </header>
      {staff && (
        <nav aria-label="Console">
          <ul>
            {allowed.map((r) => (
              <li key={r.path}>
                <a href={`#${r.path}`} aria-current={r === route ? 'page' : undefined}>
                  {r.title}
                </a>
              </li>
            ))}
          </ul>
        </nav>
      )}
      <main id="main" tabIndex={-1}>
        {route ? route.render(live) : <PortalPage live={live} />}
      </main>
    </div>
  );
}
