import '@devolutions/iron-remote-desktop';
import type { IronError, UserInteraction } from '@devolutions/iron-remote-desktop';
import { enableCredssp, init } from '@devolutions/iron-remote-desktop-rdp';
import { rdCleanPathErrorWords } from '@stagedoor/contract/rdcleanpath';
import { rdpClipboard } from './rdp-clipboard.ts';
import { useEffect, useRef, useState, type FormEvent, type ReactNode } from 'react';
import type { SessionEnd, ViewerControls, ViewerProps } from './viewer.ts';

/** IronErrorKind (a const enum in the package's types, so not importable at run time). */
const KIND = { General: 0, WrongPassword: 1, LogonFailure: 2, AccessDenied: 3, RDCleanPath: 4, ProxyConnect: 5, NegotiationFailure: 6 } as const;
/** ScreenScale: Fit 1, Real 3. */
const SCALE = { fit: 1, real: 3 } as const;

let wasmReady: Promise<void> | null = null;

/**
 * RDP in the tab with IronRDP's web component (issue 17 point 3, ADR 0030). Unlike the other
 * viewers it does not use the shell's `open`: IronRDP's WebAssembly opens the gateway's tunnel
 * itself and its first message is the RDCleanPath request, carrying the grant token as its
 * `proxy_auth` (never in the URL) and `destination`, the grant's workstation, which the gateway
 * checks. The gateway does TLS with the workstation and relays the RDP stream inside it.
 *
 * Credentials are asked here and go only to the workstation (Stagedoor stores none). Left empty,
 * xrdp shows its own sign-in screen; a Windows host that requires NLA needs them up front.
 * Keys are sent as scancodes, so the workstation's keyboard layout applies, as with mstsc.
 */
export function RdpView(props: ViewerProps): ReactNode {
  const { session, onReady, onClipboard, onFailed } = props;
  const host = useRef<HTMLDivElement>(null);
  const [credentials, setCredentials] = useState<{ username: string; password: string } | null>(null);
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');

  useEffect(() => {
    if (!credentials || !host.current) return;
    let ended = false;
    let byUser = false;
    let ui: UserInteraction | null = null;
    let connected = false;
    let scale: number = SCALE.fit;
    const el = document.createElement('iron-remote-desktop') as HTMLElement & { module?: unknown };
    // The desktop's copied text goes to the toolbar's panel; "Send to desktop" goes through cliprdr.
    const clipboard = rdpClipboard(onClipboard);
    el.setAttribute('scale', 'fit');
    el.setAttribute('flexcenter', 'true');
    el.setAttribute('data-testid', 'rdp-screen');
    const fail = (end: SessionEnd) => {
      if (ended) return;
      ended = true;
      onFailed(end);
    };
    const onReadyEvent = (e: Event) => {
      ui = (e as CustomEvent<{ irgUserInteraction: UserInteraction }>).detail.irgUserInteraction;
      void connect(ui);
    };
    const connect = async (u: UserInteraction) => {
      await (wasmReady ??= init('WARN'));
      u.setEnableClipboard(true);
      u.setEnableAutoClipboard(true);
      const box = host.current?.getBoundingClientRect();
      const size = { width: desktopWidth(box?.width ?? 1280), height: Math.max(200, Math.floor(box?.height ?? 800)) };
      const config = u
        .configBuilder()
        .withUsername(credentials.username)
        .withPassword(credentials.password)
        .withDestination(session.destination)
        .withProxyAddress(session.url)
        .withServerDomain('')
        .withAuthToken(session.token)
        .withDesktopSize(size)
        // CredSSP needs the password before the desktop shows anything; without one, TLS only.
        .withExtension(enableCredssp(credentials.password !== ''))
        .build();
      let info;
      try {
        info = await u.connect(config);
      } catch (err) {
        return fail(describeIronError(err));
      }
      connected = true;
      u.setVisibility(true);
      const controls: ViewerControls = {
        disconnect: () => {
          byUser = true;
          u.shutdown();
        },
        focus: () => el.focus(),
        setScaled: (scaled) => u.setScale((scale = scaled ? SCALE.fit : SCALE.real)),
        // Straight to the session's clipboard channel, without the browser's clipboard (rdp-clipboard.ts).
        paste: (text) => void clipboard.send(text).catch(() => undefined),
        shortcuts: [
          { label: 'Ctrl+Alt+Del', send: () => u.ctrlAltDel() },
          { label: 'Windows key', send: () => u.metaKey() },
        ],
      };
      onReady(controls);
      el.focus();
      try {
        const done = await info.run();
        fail(byUser ? { title: 'Disconnected', detail: 'You ended this session. Your desktop keeps running until it is released.', canRetry: true } : { title: 'The desktop ended the session', detail: sentence(done.reason()), canRetry: true });
      } catch {
        // IronRDP owns the WebSocket and does not pass on the gateway's close reason: once running, a
        // broken stream is the gateway closing it (an admin's Disconnect, a released desktop) or the network.
        fail(
          byUser
            ? { title: 'Disconnected', detail: 'You ended this session.', canRetry: true }
            : { title: 'The session was closed', detail: 'The connection to the desktop ended: an administrator may have disconnected it, the desktop may have been released, or the network dropped. Connect again from your Stagedoor portal.', canRetry: true },
        );
      }
    };
    el.addEventListener('ready', onReadyEvent, { once: true });
    // The backend before the element is connected: the component starts once it has both.
    el.module = clipboard.backend;
    host.current.appendChild(el);
    // A resize of the tab (or of the stage, when a toolbar panel opens) scales the picture to the new
    // box; the desktop keeps the size it started with. Not Display Control: xrdp resizes the session
    // on request, but IronRDP 0.7 keeps its canvas at the first size after the server's
    // Deactivation-Reactivation and draws the smaller desktop into its top-left corner, leaving stale
    // pixels beside it (ADR 0030; test/web/browser-rdp-session.test.ts showed it).
    const resize = new ResizeObserver(() => {
      if (connected && ui) ui.setScale(scale);
    });
    resize.observe(host.current);
    return () => {
      ended = true;
      resize.disconnect();
      try {
        ui?.shutdown();
      } catch {
        // Not connected yet: nothing to end.
      }
      el.remove();
    };
  }, [credentials, session, onReady, onClipboard, onFailed]);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    setCredentials({ username, password });
    setPassword('');
  };
  return (
    <div className="viewer rdp-viewer">
      <div ref={host} className="rdp-screen" />
      {!credentials && (
        <form className="viewer-prompt" onSubmit={submit} aria-label="Sign in to the desktop">
          <p>Sign in to {session.desktopName}. Leave both empty to sign in on the desktop's own screen.</p>
          <label htmlFor="rdp-username">User name on the desktop</label>
          <input id="rdp-username" autoComplete="username" autoFocus value={username} onChange={(e) => setUsername(e.target.value)} />
          <label htmlFor="rdp-password">Password</label>
          <input id="rdp-password" type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} />
          <button type="submit">Connect</button>
        </form>
      )}
    </div>
  );
}

/**
 * A desktop width that is a multiple of 4: some servers round odd widths, and IronRDP 0.7 draws
 * bitmaps whose width is not a multiple of 4 sheared (ADR 0030), which a whole-screen update of such
 * a desktop is.
 */
function desktopWidth(w: number): number {
  return Math.max(320, Math.floor(w / 4) * 4);
}

function sentence(s: string): string {
  const t = s.trim();
  return t ? t.charAt(0).toUpperCase() + t.slice(1) + (/[.!?]$/.test(t) ? '' : '.') : '';
}

function isIronError(err: unknown): err is IronError {
  return typeof err === 'object' && err !== null && typeof (err as IronError).kind === 'function' && typeof (err as IronError).backtrace === 'function';
}

/** What went wrong, in words: the gateway's refusal (RDCleanPath error), the desktop's, or the network. */
export function describeIronError(err: unknown): SessionEnd {
  if (!isIronError(err)) return { title: 'The session could not start', detail: sentence(String(err)), canRetry: true };
  switch (err.kind() as number) {
    case KIND.RDCleanPath: {
      const d = err.rdcleanpathDetails();
      const words = rdCleanPathErrorWords({ httpStatusCode: d?.httpStatusCode, wsaLastError: d?.wsaErrorCode, tlsAlertCode: d?.tlsAlertCode });
      const refused = d?.httpStatusCode !== undefined && d.httpStatusCode >= 400 && d.httpStatusCode < 500;
      return { title: refused ? 'The gateway refused this session' : 'The desktop did not answer', detail: sentence(words), canRetry: !refused };
    }
    case KIND.ProxyConnect:
      return { title: 'The gateway could not be reached', detail: 'This browser could not open the gateway. If it uses a certificate this browser does not trust yet (a self-signed one), open the gateway address in this browser once, accept the certificate, and try again.', canRetry: true };
    case KIND.NegotiationFailure:
      return { title: 'The desktop refused the connection', detail: 'It asks for an RDP security this browser session cannot offer. Try again with your user name and password filled in.', canRetry: true };
    case KIND.WrongPassword:
    case KIND.LogonFailure:
      return { title: 'The desktop refused the sign-in', detail: 'The user name or password was not accepted.', canRetry: true };
    case KIND.AccessDenied:
      return { title: 'The desktop refused access', detail: 'This account may not sign in to this desktop remotely.', canRetry: true };
    default:
      return { title: 'The session could not start', detail: sentence(err.backtrace().split('\n')[0] ?? 'an RDP error'), canRetry: true };
  }
}
