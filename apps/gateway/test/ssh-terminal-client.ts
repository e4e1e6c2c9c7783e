import { SSH_TERMINAL_MODE, type SshTerminalClientMessage, type SshTerminalServerMessage } from '@stagedoor/contract';
import WebSocket from 'ws';

/**
 * A Node client of the browser terminal's wire (packages/contract/src/ssh-terminal.ts), for the
 * gateway test and the memory measurement: what the browser's terminal view does, without a browser.
 * The terminal output is kept as text; waits are on conditions (text seen, message seen, closed).
 */
export class SshTerminalClient {
  readonly ws: WebSocket;
  output = '';
  readonly messages: (SshTerminalServerMessage | { ok: true })[] = [];
  closed: { code: number; reason: string } | null = null;
  readonly #waiters = new Set<() => void>();

  constructor(url: string, first: Record<string, unknown>, ca?: string) {
    this.ws = new WebSocket(url, { ...(ca ? { ca } : { rejectUnauthorized: false }) });
    this.ws.on('open', () => this.ws.send(JSON.stringify({ mode: SSH_TERMINAL_MODE, ...first })));
    this.ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) this.output += data.toString('utf8');
      else this.messages.push(JSON.parse(data.toString('utf8')) as SshTerminalServerMessage);
      this.#wake();
    });
    this.ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString('utf8') };
      this.#wake();
    });
    this.ws.on('error', () => {});
  }

  type(text: string): void {
    this.ws.send(Buffer.from(text, 'utf8'), { binary: true });
  }

  control(msg: SshTerminalClientMessage): void {
    this.ws.send(JSON.stringify(msg));
  }

  /** Wait until `check` holds (re-checked on every frame and on close); fails with what was seen. */
  until<T>(what: string, check: () => T | null | undefined | false, timeoutMs = 60_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(probe);
        reject(new Error(`waited for ${what}; output: ${JSON.stringify(this.output.slice(-500))}; messages: ${JSON.stringify(this.messages)}; closed: ${JSON.stringify(this.closed)}`));
      }, timeoutMs);
      const probe = () => {
        const v = check();
        if (v === null || v === undefined || v === false) return;
        clearTimeout(timer);
        this.#waiters.delete(probe);
        resolve(v);
      };
      this.#waiters.add(probe);
      probe();
    });
  }

  /** Output after `from` matching `re`. */
  text(re: RegExp, from = 0): Promise<RegExpMatchArray> {
    return this.until(`${re}`, () => this.output.slice(from).match(re));
  }

  message<T extends string>(type: T): Promise<Extract<SshTerminalServerMessage, { type: T }>> {
    return this.until(`a ${type} message`, () => this.messages.find((m) => 'type' in m && m.type === type) as Extract<SshTerminalServerMessage, { type: T }> | undefined);
  }

  closedWith(): Promise<{ code: number; reason: string }> {
    return this.until('the close', () => this.closed);
  }

  close(): void {
    this.ws.close();
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }
}
