import RFB from '@novnc/novnc';
import { useEffect, useRef, useState, type FormEvent, type ReactNode } from 'react';
import type { ViewerControls, ViewerProps } from './viewer.ts';

/** X keysyms of the keys the toolbar sends (a browser or the local OS keeps them for itself). */
const XK = { Control_L: 0xffe3, Alt_L: 0xffe9, Tab: 0xff09, Escape: 0xff1b, Super_L: 0xffeb };

/**
 * VNC in the tab with noVNC (issue 17 point 1): the tunnel's `tcp` mode carries RFB as binary frames,
 * so noVNC is handed the WebSocket once the gateway said `{"ok":true}` (after the token, which noVNC
 * knows nothing of). Scaled to the window by default; view-only when the plan says so.
 */
export function VncView(props: ViewerProps): ReactNode {
  const screen = useRef<HTMLDivElement>(null);
  const rfbRef = useRef<RFB | null>(null);
  const [askPassword, setAskPassword] = useState(false);
  const [password, setPassword] = useState('');
  // The shell's callbacks are stable; the session does not change while this viewer lives.
  const { session, open, onReady, onClipboard, onFailed } = props;

  useEffect(() => {
    const ws = open();
    let rfb: RFB | null = null;
    const onFirst = (e: MessageEvent) => {
      ws.removeEventListener('message', onFirst);
      // Anything but the gateway's ok is not ours to show: the shell reports the close that follows.
      if (typeof e.data !== 'string' || !isOk(e.data)) return void ws.close();
      // Handed over synchronously: the RFB bytes that follow are dispatched to noVNC's own handlers.
      rfb = new RFB(screen.current!, ws, { shared: true });
      rfbRef.current = rfb;
      rfb.scaleViewport = true;
      rfb.resizeSession = false;
      rfb.focusOnClick = true;
      rfb.viewOnly = session.viewOnly;
      rfb.background = '#1f2937';
      const r = rfb;
      r.addEventListener('connect', () => {
        const controls: ViewerControls = {
          disconnect: () => r.disconnect(),
          focus: () => r.focus(),
          setScaled: (scaled) => void (r.scaleViewport = scaled),
        };
        if (!session.viewOnly) {
          controls.paste = (text) => r.clipboardPasteFrom(text);
          controls.shortcuts = [
            { label: 'Ctrl+Alt+Del', send: () => r.sendCtrlAltDel() },
            { label: 'Alt+Tab', send: () => chord(r, [[XK.Alt_L, 'AltLeft'], [XK.Tab, 'Tab']]) },
            { label: 'Ctrl+Esc', send: () => chord(r, [[XK.Control_L, 'ControlLeft'], [XK.Escape, 'Escape']]) },
            { label: 'Windows key', send: () => chord(r, [[XK.Super_L, 'MetaLeft']]) },
          ];
        }
        onReady(controls);
        r.focus();
      });
      r.addEventListener('clipboard', (ev) => onClipboard((ev as CustomEvent<{ text: string }>).detail.text));
      r.addEventListener('credentialsrequired', () => setAskPassword(true));
      r.addEventListener('securityfailure', (ev) => {
        const reason = (ev as CustomEvent<{ reason?: string }>).detail.reason;
        onFailed({ title: 'The desktop refused the sign-in', detail: reason ? `The VNC server said: ${reason}` : 'The VNC password was not accepted.', canRetry: true });
      });
    };
    ws.addEventListener('message', onFirst);
    return () => {
      ws.removeEventListener('message', onFirst);
      rfbRef.current = null;
      if (rfb) rfb.disconnect();
      else if (ws.readyState === WebSocket.CONNECTING || ws.readyState === WebSocket.OPEN) ws.close();
    };
  }, [session, open, onReady, onClipboard, onFailed]);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    rfbRef.current?.sendCredentials({ password });
    setPassword('');
    setAskPassword(false);
  };
  return (
    <div className="viewer vnc-viewer">
      <div ref={screen} className="vnc-screen" data-testid="vnc-screen" />
      {askPassword && (
        <form className="viewer-prompt" onSubmit={submit}>
          <label htmlFor="vnc-password">The desktop asks for its VNC password</label>
          <input id="vnc-password" type="password" autoComplete="off" autoFocus value={password} onChange={(e) => setPassword(e.target.value)} />
          <button type="submit">Send</button>
        </form>
      )}
    </div>
  );
}

function isOk(text: string): boolean {
  try {
    return (JSON.parse(text) as { ok?: unknown }).ok === true;
  } catch {
    return false;
  }
}

/** Press the keys in order, release them in reverse. */
function chord(rfb: RFB, keys: [number, string][]): void {
  for (const [sym, code] of keys) rfb.sendKey(sym, code, true);
  for (const [sym, code] of [...keys].reverse()) rfb.sendKey(sym, code, false);
}
