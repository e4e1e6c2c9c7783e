import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';
import '@xterm/xterm/css/xterm.css';
import { useEffect, useRef, useState, type ReactNode } from 'react';
import type { SshTerminalClientMessage, SshTerminalServerMessage } from '@stagedoor/contract/ssh-terminal';
import { withAdoptedStyles } from './csp-styles.ts';
import { hostKeyCheck, rememberHostKey, type HostKeyCheck } from './host-keys.ts';
import type { ViewerProps } from './viewer.ts';

type HostKeyQuestion = HostKeyCheck & { algorithm: string; fingerprint: string; answer: (accept: boolean) => void };

/**
 * SSH in the tab (issue 17 point 2): xterm.js over the tunnel's `ssh-terminal` mode, where the gateway
 * is the SSH client (packages/contract/src/ssh-terminal.ts). Keystrokes go out as binary frames and
 * the workstation's output comes back the same way; the sign-in prompts (login name, password) are
 * the workstation's, answered in the terminal. The host key is checked against what this browser
 * remembered for the desktop (ADR 0029): a first key or a changed one is asked about here.
 * The terminal fits the window (and tells the gateway its size); Ctrl+Shift+C / Ctrl+Shift+V copy
 * and paste, and the toolbar's clipboard panel sends text as a paste.
 */
export function TerminalView(props: ViewerProps): ReactNode {
  const box = useRef<HTMLDivElement>(null);
  const [question, setQuestion] = useState<HostKeyQuestion | null>(null);
  // The shell's callbacks are stable; the session does not change while this viewer lives.
  const { session, open, onReady, onClipboard, onFailed } = props;

  useEffect(() => {
    const { result: term, dispose: disposeStyles } = withAdoptedStyles(() => {
      const t = new Terminal({ cursorBlink: true, fontFamily: 'ui-monospace, "DejaVu Sans Mono", monospace', fontSize: 14, scrollback: 5000, theme: { background: '#111827' } });
      t.open(box.current!);
      return t;
    });
    const fit = new FitAddon();
    term.loadAddon(fit);
    fit.fit();
    const encoder = new TextEncoder();
    const ws = open({ cols: term.cols, rows: term.rows, desktop: session.desktopName });
    const control = (msg: SshTerminalClientMessage) => ws.readyState === WebSocket.OPEN && ws.send(JSON.stringify(msg));
    const sendKeys = (data: string) => ws.readyState === WebSocket.OPEN && ws.send(encoder.encode(data));

    term.onData(sendKeys);
    term.onBinary((data) => ws.readyState === WebSocket.OPEN && ws.send(Uint8Array.from(data, (c) => c.charCodeAt(0))));
    term.onResize(({ cols, rows }) => control({ type: 'resize', cols, rows }));
    term.onSelectionChange(() => {
      const text = term.getSelection();
      if (text) onClipboard(text);
    });
    // Ctrl+Shift+C copies the selection (Ctrl+C is the shell's interrupt); Ctrl+Shift+V lets the
    // browser's paste event through, which xterm sends as a (bracketed) paste.
    term.attachCustomKeyEventHandler((e) => {
      if (e.type !== 'keydown' || !e.ctrlKey || !e.shiftKey) return true;
      if (e.code === 'KeyC') {
        const text = term.getSelection();
        if (text) void navigator.clipboard?.writeText(text).catch(() => undefined);
        return false;
      }
      return e.code !== 'KeyV';
    });

    ws.addEventListener('message', (e: MessageEvent<string | ArrayBuffer>) => {
      if (typeof e.data !== 'string') return term.write(new Uint8Array(e.data));
      const msg = JSON.parse(e.data) as SshTerminalServerMessage | { ok: true };
      if ('ok' in msg) return term.write(`Connecting to ${session.desktopName}…\r\n`);
      if (msg.type === 'host-key') {
        if (msg.known === 'match') return term.write(`Host key ${msg.fingerprint} is the one registered for this desktop.\r\n`);
        const check = hostKeyCheck(session.desktopName, msg.algorithm, msg.fingerprint);
        if (check.state === 'same') {
          term.write(`Host key ${msg.fingerprint} as remembered in this browser.\r\n`);
          return control({ type: 'host-key-answer', accept: true });
        }
        return setQuestion({
          ...check,
          algorithm: msg.algorithm,
          fingerprint: msg.fingerprint,
          answer: (accept) => {
            setQuestion(null);
            if (accept) rememberHostKey(session.desktopName, msg.algorithm, msg.fingerprint);
            control({ type: 'host-key-answer', accept });
            term.focus();
          },
        });
      }
      if (msg.type === 'shell') {
        onReady({
          disconnect: () => ws.close(1000),
          focus: () => term.focus(),
          paste: (text) => term.paste(text),
          shortcuts: [
            // Keys the browser keeps for itself (close tab, new tab, new window).
            { label: 'Ctrl+W', send: () => sendKeys('\x17') },
            { label: 'Ctrl+T', send: () => sendKeys('\x14') },
            { label: 'Ctrl+N', send: () => sendKeys('\x0e') },
          ],
        });
        return;
      }
      if (msg.type === 'error') onFailed(describeError(msg.message));
    });
    ws.addEventListener('open', () => term.focus(), { once: true });

    // Fit to the window: the stage follows the window's size, and the terminal follows the stage.
    const observer = new ResizeObserver(() => fit.fit());
    observer.observe(box.current!);
    return () => {
      observer.disconnect();
      if (ws.readyState === WebSocket.CONNECTING || ws.readyState === WebSocket.OPEN) ws.close(1000);
      term.dispose();
      disposeStyles();
    };
  }, [session, open, onReady, onClipboard, onFailed]);

  return (
    <div className="viewer terminal-viewer">
      <div ref={box} className="terminal-box" data-testid="terminal" />
      {question && <HostKeyPrompt q={question} desktop={session.desktopName} />}
    </div>
  );
}

function HostKeyPrompt(props: { q: HostKeyQuestion; desktop: string }): ReactNode {
  const { q, desktop } = props;
  return (
    <div className="viewer-prompt host-key-prompt" role="dialog" aria-label="Host key">
      {q.state === 'changed' ? (
        <p>
          <strong>Warning: the host key of {desktop} has changed.</strong> This browser remembered {q.previous}; the desktop now shows {q.algorithm} {q.fingerprint}. If its
          administrator did not rebuild it or change its keys, do not connect.
        </p>
      ) : (
        <p>
          First connection to {desktop} from this browser. Its host key is {q.algorithm} <code>{q.fingerprint}</code>. Compare it with what your administrator published if you can; it is
          remembered for the next time.
        </p>
      )}
      <div>
        <button type="button" onClick={() => q.answer(false)} autoFocus={q.state === 'changed'}>
          Do not connect
        </button>{' '}
        <button type="button" onClick={() => q.answer(true)} autoFocus={q.state !== 'changed'}>
          {q.state === 'changed' ? 'Trust the new key and connect' : 'Trust and connect'}
        </button>
      </div>
    </div>
  );
}

/** The gateway's `error` comes just before its close: the message to show, by what the close will be. */
function describeError(message: string): { title: string; detail: string; canRetry?: boolean } {
  if (/permission denied/i.test(message)) return { title: 'The desktop refused the sign-in', detail: message, canRetry: true };
  if (/host key/i.test(message)) return { title: 'Not connected', detail: message, canRetry: true };
  return { title: 'The session ended', detail: message };
}
