import { useCallback, useEffect, useRef, useState, type ComponentType, type ReactNode } from 'react';
import { ApiError, get, messageOf, post, setCsrfToken } from '../api/client.ts';
import type { BrowserSession, Me } from '../api/types.ts';
import { RdpView } from '../browser/rdp-view.tsx';
import { TerminalView } from '../browser/terminal-view.tsx';
import { describeClose, openTunnel } from '../browser/tunnel.ts';
import type { SessionEnd, ViewerControls, ViewerProps } from '../browser/viewer.ts';
import { VncView } from '../browser/vnc-view.tsx';

/** The viewer in the slot, by protocol (ADR 0028). */
const VIEWERS: Partial<Record<BrowserSession['protocol'], ComponentType<ViewerProps>>> = { vnc: VncView, ssh: TerminalView, rdp: RdpView };

type Phase = 'loading' | 'connecting' | 'connected' | 'ended';

/**
 * A desktop in a tab of its own (session.html#<connection id>, opened by the portal's "Open in
 * browser"): asks the broker for the session (the grant's token arrives in the response body), puts
 * the protocol's viewer in the slot, and keeps a toolbar (disconnect, full screen, scaling, clipboard,
 * keys the local machine would keep) and a plain message for how the session ended — the gateway's
 * refusal (used, expired, another address), an admin's Disconnect, the desktop going away.
 */
export function BrowserSessionPage(props: { connectionId: string }): ReactNode {
  const [session, setSession] = useState<BrowserSession | null>(null);
  const [controls, setControls] = useState<ViewerControls | null>(null);
  const [end, setEnd] = useState<SessionEnd | null>(null);
  const [attempt, setAttempt] = useState(0);
  const [clipboard, setClipboard] = useState('');
  const [panel, setPanel] = useState<'clipboard' | 'keys' | null>(null);
  const [scaled, setScaled] = useState(true);
  const byUser = useRef(false);
  const root = useRef<HTMLDivElement>(null);

  useEffect(() => {
    let cancelled = false;
    setSession(null);
    setEnd(null);
    setControls(null);
    byUser.current = false;
    (async () => {
      const me = await get<Me>('/api/v1/me');
      setCsrfToken(me.csrfToken);
      return post<BrowserSession>(`/api/v1/connections/${encodeURIComponent(props.connectionId)}/browser`);
    })().then(
      (s) => {
        if (cancelled) return;
        document.title = `${s.desktopName} — Stagedoor`;
        setSession(s);
      },
      (err: unknown) => !cancelled && setEnd(describeApiError(err)),
    );
    return () => void (cancelled = true);
  }, [props.connectionId, attempt]);

  // Stable callbacks for the viewer: it opens the tunnel once per attempt.
  const sessionRef = useRef<BrowserSession | null>(null);
  sessionRef.current = session;
  const attemptRef = useRef(attempt);
  attemptRef.current = attempt;
  const open = useCallback((options?: Record<string, unknown>) => {
    const s = sessionRef.current!;
    const ws = openTunnel(s, options);
    const mine = attemptRef.current;
    let opened = false;
    ws.addEventListener('open', () => void (opened = true));
    ws.addEventListener('close', (e) => {
      // A tunnel of an earlier attempt (closed as its viewer went away) says nothing about this one.
      if (attemptRef.current !== mine) return;
      setControls(null);
      setEnd((prev) => prev ?? describeClose({ code: e.code, reason: e.reason }, { opened, byUser: byUser.current, url: s.url }));
    });
    return ws;
  }, []);
  const onReady = useCallback((c: ViewerControls) => setControls(c), []);
  const onClipboard = useCallback((text: string) => setClipboard(text), []);
  const onFailed = useCallback((e: SessionEnd) => setEnd((prev) => prev ?? e), []);

  const phase: Phase = end ? 'ended' : !session ? 'loading' : controls ? 'connected' : 'connecting';
  const View = session ? VIEWERS[session.protocol] : undefined;
  const act = (f: () => void) => () => {
    f();
    controls?.focus?.();
  };
  const disconnect = () => {
    byUser.current = true;
    controls?.disconnect();
  };
  // The session goes in the same render as the attempt changes: a viewer mounted for the new attempt
  // with the old session would open a tunnel only to close it when the new session arrives.
  const connectAgain = () => {
    setSession(null);
    setEnd(null);
    setControls(null);
    setAttempt((n) => n + 1);
  };
  const fullScreen = () => {
    if (document.fullscreenElement) void document.exitFullscreen();
    else void root.current?.requestFullscreen().catch(() => undefined);
  };

  return (
    <div ref={root} className="browser-session" data-phase={phase}>
      <header className="session-toolbar" role="toolbar" aria-label="Session">
        <strong className="session-name">{session?.desktopName ?? 'Desktop'}</strong>
        <span className={`badge session-phase phase-${phase}`} role="status">
          {PHASE_LABEL[phase]}
          {session?.viewOnly && phase === 'connected' ? ' · view only' : ''}
        </span>
        <span className="spacer" />
        <button type="button" disabled={!controls} onClick={disconnect}>
          Disconnect
        </button>
        <button type="button" onClick={fullScreen}>
          Full screen
        </button>
        {controls?.setScaled && (
          <button
            type="button"
            aria-pressed={scaled}
            onClick={act(() => {
              controls.setScaled!(!scaled);
              setScaled(!scaled);
            })}
          >
            Scale to window
          </button>
        )}
        <button type="button" aria-expanded={panel === 'clipboard'} disabled={!controls} onClick={() => setPanel(panel === 'clipboard' ? null : 'clipboard')}>
          Clipboard
        </button>
        {controls?.shortcuts && (
          <button type="button" aria-expanded={panel === 'keys'} onClick={() => setPanel(panel === 'keys' ? null : 'keys')}>
            Keys
          </button>
        )}
      </header>
      {panel === 'clipboard' && controls && (
        <div className="session-panel clipboard-panel">
          <label htmlFor="session-clipboard">
            {controls.paste
              ? 'Clipboard: the desktop\'s copied text appears here; edit it and send it to paste on the desktop.'
              : 'Clipboard: the desktop\'s copied text appears here (view only: nothing is sent to the desktop).'}
          </label>
          <textarea id="session-clipboard" rows={4} value={clipboard} onChange={(e) => setClipboard(e.target.value)} />
          {controls.paste && (
            <button type="button" onClick={act(() => controls.paste!(clipboard))}>
              Send to desktop
            </button>
          )}
        </div>
      )}
      {panel === 'keys' && controls?.shortcuts && (
        <div className="session-panel keys-panel">
          {controls.shortcuts.map((k) => (
            <button key={k.label} type="button" onClick={act(k.send)}>
              Send {k.label}
            </button>
          ))}
        </div>
      )}
      {end && (
        <div className="session-end" role="alert" data-testid="session-end">
          <h1>{end.title}</h1>
          <p>{end.detail}</p>
          {end.canRetry && (
            <button type="button" onClick={connectAgain}>
              Connect again
            </button>
          )}
        </div>
      )}
      {phase === 'loading' && <p className="session-note">Asking Stagedoor for the session…</p>}
      <main className="session-stage">{session && View && <View key={attempt} session={session} open={open} onReady={onReady} onClipboard={onClipboard} onFailed={onFailed} />}</main>
    </div>
  );
}

const PHASE_LABEL: Record<Phase, string> = { loading: 'Starting', connecting: 'Connecting', connected: 'Connected', ended: 'Ended' };

function describeApiError(err: unknown): SessionEnd {
  if (err instanceof ApiError) {
    if (err.status === 401) return { title: 'Sign in first', detail: 'Sign in to Stagedoor in this browser, then open the desktop again from your portal.' };
    if (err.status === 404) return { title: 'No such connection', detail: 'This connection is not yours, or it is gone: open the desktop again from your portal.' };
    if (err.status === 409) return { title: 'This desktop cannot be opened here', detail: err.message };
  }
  return { title: 'Stagedoor did not answer', detail: messageOf(err), canRetry: true };
}
