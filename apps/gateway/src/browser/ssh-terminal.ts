import {
  closeReason,
  parseSshTerminalClientMessage,
  SSH_TERMINAL_CLOSE,
  SSH_TERMINAL_MAX_COLS,
  SSH_TERMINAL_MAX_ROWS,
  TUNNEL_CLOSE,
  type SshTerminalServerMessage,
} from '@stagedoor/contract';
import net from 'node:net';
import type { ClientChannel, KeyboardInteractiveCallback, Prompt } from 'ssh2';
import { ssh2 } from '../routed/ssh2-keys.ts';
import type { WebSocket } from 'ws';
import type { Log } from '../log.ts';
import type { ModeHandler } from './modes.ts';
import { REFUSAL_MESSAGES, type Admitted } from '../routed/admission.ts';
import { sshFingerprint } from '../routed/ssh-host-key.ts';
import { TerminalPrompt } from './terminal-prompt.ts';

/**
 * SSH in the browser (issue 17, ADR 0029): for an admitted grant, the gateway is the SSH client to
 * the grant's target — that host and port, nothing else — and the browser is the terminal. The wire
 * is in packages/contract/src/ssh-terminal.ts. The user answers the workstation's own prompts in
 * the terminal; the answers go to the workstation only (Stagedoor keeps no workstation credentials
 * and never logs them). Both directions have backpressure, so a slow browser or a chatty shell
 * holds the other side back instead of growing the gateway's memory.
 */
export interface SshTerminalOptions {
  ws: WebSocket;
  admitted: Admitted;
  log: Log;
  /** The first message's mode options: `username` (else the terminal asks), `cols`, `rows`, `desktop` (a name for prompts). */
  options: Record<string, unknown>;
  /** Frames that came before the mode listened, in order (call once, synchronously). */
  takeEarly: () => { data: Buffer; isBinary: boolean }[];
  /** Host keys registered for this workstation (`ssh-ed25519 AAAA…` or `SHA256:…`): when any, the key must be one of them. */
  knownHostKeys?: readonly string[];
  connectTimeoutMs: number;
  /** Stop reading one side while the other has this much queued. */
  highWaterMark: number;
  /** The whole sign-in (host key answer, prompts) must finish within this (default 5 min). */
  signInTimeoutMs?: number;
  /** The session is over (reports it to the broker); called once. */
  ended: (outcome: { reason: string; bytesUp: number; bytesDown: number }) => void;
}

/** Like OpenSSH's NumberOfPasswordPrompts: after this many refused answers the gateway stops asking. */
const MAX_AUTH_ATTEMPTS = 3;

export function runSshTerminal(opts: SshTerminalOptions): void {
  const { ws, admitted, highWaterMark } = opts;
  const low = highWaterMark / 4;
  const options = opts.options;
  const size = { cols: clampSize(options.cols, 80, SSH_TERMINAL_MAX_COLS), rows: clampSize(options.rows, 24, SSH_TERMINAL_MAX_ROWS) };
  let username = typeof options.username === 'string' && options.username.length > 0 && options.username.length <= 256 ? options.username : null;
  const where = typeof options.desktop === 'string' && options.desktop.length <= 256 ? options.desktop : admitted.target.host;

  let bytesUp = 0;
  let bytesDown = 0;
  let reason: string | null = null;
  let connected = false;
  let stream: ClientChannel | null = null;
  let wsPaused = false;
  let reported = false;
  let wsClosed = false;
  let sshClosed = false;
  let hostKeyAnswer: ((accept: boolean) => void) | null = null;
  let failures = 0;
  let lastMethods: string[] = [];

  const send = (msg: SshTerminalServerMessage) => {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(msg));
  };
  const write = (text: string) => {
    if (ws.readyState === ws.OPEN) ws.send(Buffer.from(text, 'utf8'), { binary: true });
  };
  const prompt = new TerminalPrompt(write);
  const end = (code: number, message: string, why: string) => {
    reason ??= why;
    if (ws.readyState === ws.OPEN) {
      if (code !== 1000) {
        write(`\r\n${message}\r\n`);
        send({ type: 'error', message });
      }
      ws.close(code, closeReason(message));
    }
    prompt.close();
    hostKeyAnswer = null;
    conn.end();
  };

  const finish = () => {
    if (!wsClosed || !sshClosed || reported) return;
    reported = true;
    opts.ended({ reason: reason ?? 'closed', bytesUp, bytesDown });
  };

  const conn = new ssh2.Client();
  admitted.countBytes(() => ({ bytesUp, bytesDown }));
  admitted.onClose((why) => {
    const message = why in REFUSAL_MESSAGES ? REFUSAL_MESSAGES[why as keyof typeof REFUSAL_MESSAGES] : REFUSAL_MESSAGES.closed;
    end(TUNNEL_CLOSE.closed, message, why.startsWith('revoked') ? why : `revoked: ${why}`);
    conn.destroy();
    setTimeout(() => ws.terminate(), 1000).unref();
  });

  const onMessage = (data: Buffer, isBinary: boolean) => {
    if (isBinary) {
      bytesUp += data.length;
      if (!stream) return prompt.feed(data);
      if (!stream.write(data) && !wsPaused) {
        wsPaused = true;
        ws.pause();
      }
      return;
    }
    const msg = parseSshTerminalClientMessage(data.toString('utf8'));
    if (!msg) return end(TUNNEL_CLOSE.badRequest, REFUSAL_MESSAGES['bad-request'], 'client-error: bad control frame');
    if (msg.type === 'resize') {
      size.cols = msg.cols;
      size.rows = msg.rows;
      stream?.setWindow(msg.rows, msg.cols, 0, 0);
    } else if (hostKeyAnswer) {
      const answer = hostKeyAnswer;
      hostKeyAnswer = null;
      answer(msg.accept);
    }
  };
  for (const frame of opts.takeEarly()) onMessage(frame.data, frame.isBinary);
  ws.on('message', onMessage);

  ws.on('close', () => {
    wsClosed = true;
    reason ??= 'client-closed';
    prompt.close();
    // A host key question still open is dropped, not answered: ssh2 cannot take an answer once
    // the connection is ending (it throws), and ending it is the answer.
    hostKeyAnswer = null;
    if (!connected) sock.destroy();
    conn.end();
    // A workstation that does not answer the close still goes away.
    setTimeout(() => sock.destroy(), 5000).unref();
    finish();
  });

  conn.on('banner', (text: string) => write(text.replace(/\r?\n/g, '\r\n')));
  conn.on('ready', () => {
    prompt.close();
    conn.shell({ term: 'xterm-256color', cols: size.cols, rows: size.rows, width: 0, height: 0 }, { env: { LANG: 'C.UTF-8' } }, (err, channel) => {
      if (err) return end(SSH_TERMINAL_CLOSE.sshError, `the desktop did not open a shell: ${err.message}`, `ssh-error: ${err.message}`);
      if (ws.readyState !== ws.OPEN) return void channel.close();
      stream = channel;
      // Resizes that came while the shell was opening.
      channel.setWindow(size.rows, size.cols, 0, 0);
      send({ type: 'shell' });
      opts.log.info({ grant: admitted.grantId }, 'browser ssh: shell open');
      const toBrowser = (chunk: Buffer) => {
        bytesDown += chunk.length;
        ws.send(chunk, { binary: true }, () => {
          if (channel.isPaused() && ws.bufferedAmount < low) channel.resume();
        });
        if (ws.bufferedAmount > highWaterMark) channel.pause();
      };
      channel.on('data', toBrowser);
      channel.stderr.on('data', toBrowser);
      channel.on('drain', () => {
        if (wsPaused) {
          wsPaused = false;
          ws.resume();
        }
      });
      channel.on('close', () => end(1000, 'the shell exited', 'shell-exited'));
    });
  });
  conn.on('error', (err: Error & { level?: string }) => {
    if (err.level === 'client-authentication') {
      const methods = lastMethods.length > 0 ? ` (${lastMethods.join(',')})` : '';
      return end(SSH_TERMINAL_CLOSE.authFailed, `${username ?? ''}@${where}: Permission denied${methods}.`, 'auth-failed');
    }
    if (/host denied/i.test(err.message)) return end(SSH_TERMINAL_CLOSE.hostKeyRejected, "the desktop's host key was not accepted: not connected", 'host-key-rejected');
    // The workstation's own words when it hung up (e.g. "Too many authentication failures").
    end(SSH_TERMINAL_CLOSE.sshError, err.message, `ssh-error: ${err.message}`);
  });
  conn.on('close', () => {
    prompt.close();
    if (ws.readyState === ws.OPEN) end(1000, 'the desktop closed the connection', 'target-closed');
    finish();
  });

  const hostVerifier = (key: Buffer, verify: (ok: boolean) => void) => {
    const parsed = ssh2.utils.parseKey(key);
    const algorithm = parsed instanceof Error ? 'unknown' : parsed.type;
    const fingerprint = sshFingerprint(key);
    const registered = opts.knownHostKeys ?? [];
    if (registered.length > 0) {
      const line = `${algorithm} ${key.toString('base64')}`;
      const ok = registered.some((k) => k.trim() === fingerprint || k.trim().split(/\s+/).slice(0, 2).join(' ') === line);
      opts.log.info({ grant: admitted.grantId, fingerprint, ok }, 'browser ssh: host key checked against the registered keys');
      if (!ok) {
        write(`\r\nThe desktop's host key (${algorithm} ${fingerprint}) is not the one registered for it: not connected.\r\n`);
        return verify(false);
      }
      send({ type: 'host-key', algorithm, fingerprint, known: 'match' });
      return verify(true);
    }
    // No registered key: the browser compares with the key it remembered for this desktop (ADR 0029).
    hostKeyAnswer = verify;
    send({ type: 'host-key', algorithm, fingerprint, known: 'unknown' });
  };

  const authHandler = (methodsLeft: string[] | null, partialSuccess: boolean | null, next: (method: unknown) => void) => {
    void (async () => {
      if (username === null) {
        const name = await prompt.ask('login as: ', true);
        if (name === null || name.length === 0) return next(false);
        username = name;
      }
      // The first round asks the workstation which methods it takes.
      if (methodsLeft === null) return next({ type: 'none', username });
      lastMethods = methodsLeft;
      if (failures >= MAX_AUTH_ATTEMPTS) return next(false);
      if (failures > 0 && !partialSuccess) write('Permission denied, please try again.\r\n');
      failures++;
      if (methodsLeft.includes('keyboard-interactive')) return next({ type: 'keyboard-interactive', username, prompt: keyboardInteractive });
      if (methodsLeft.includes('password')) {
        const password = await prompt.ask(`${username}@${where}'s password: `, false);
        return next(password === null ? false : { type: 'password', username, password });
      }
      write(`\r\nThis desktop takes only ${methodsLeft.join(', ')}: sign in with a native SSH client instead.\r\n`);
      next(false);
    })();
  };

  const keyboardInteractive = (name: string, instructions: string, _lang: string, prompts: Prompt[], answer: KeyboardInteractiveCallback) => {
    void (async () => {
      if (name) write(`${name}\r\n`);
      if (instructions) write(`${instructions.replace(/\r?\n/g, '\r\n')}\r\n`);
      const answers: string[] = [];
      for (const p of prompts) {
        const a = await prompt.ask(p.prompt, p.echo ?? false);
        if (a === null) return answer([]);
        answers.push(a);
      }
      answer(answers);
    })();
  };

  // The TCP connection is ours, to the grant's target and nowhere else; ssh2 runs over it.
  const sock = net.connect({ host: admitted.target.host, port: admitted.target.port });
  sock.setNoDelay(true); // keystrokes should not wait for Nagle
  const connectTimer = setTimeout(() => sock.destroy(new Error('connect timeout')), opts.connectTimeoutMs);
  sock.once('error', (err) => {
    if (!connected) end(TUNNEL_CLOSE.targetUnreachable, 'the desktop did not accept the connection: try again shortly', `target-unreachable: ${err.message}`);
  });
  // The workstation side is over when our socket is closed, whichever way it went.
  sock.once('close', () => {
    clearTimeout(connectTimer);
    sshClosed = true;
    finish();
  });
  sock.once('connect', () => {
    clearTimeout(connectTimer);
    connected = true;
    if (ws.readyState !== ws.OPEN) {
      connected = false;
      return void sock.destroy();
    }
    ws.send('{"ok":true}');
    try {
      conn.connect({
        sock,
        // Each method's own user name (authHandler) is what is sent; ssh2 wants a string here.
        username: '',
        hostVerifier,
      authHandler: authHandler as never,
        readyTimeout: opts.signInTimeoutMs ?? 5 * 60_000,
        keepaliveInterval: 30_000,
        ident: 'stagedoor-gateway',
      });
    } catch (err) {
      opts.log.error({ err }, 'browser ssh: the SSH client did not start');
      sock.destroy();
      end(SSH_TERMINAL_CLOSE.sshError, 'the gateway could not start the SSH session', 'gateway-error');
    }
  });
}

/** The tunnel's `ssh-terminal` mode (registered in ./index.ts). */
export const sshTerminal: ModeHandler | undefined = (session) => runSshTerminal(session);

function clampSize(value: unknown, fallback: number, max: number): number {
  return typeof value === 'number' && Number.isFinite(value) ? Math.min(max, Math.max(1, Math.floor(value))) : fallback;
}
