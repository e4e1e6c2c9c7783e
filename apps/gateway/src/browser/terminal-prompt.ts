import { StringDecoder } from 'node:string_decoder';

/** The longest answer kept (a login name, a password, a one-time code): more is not read. */
const MAX_ANSWER = 1024;
/** Keystrokes typed ahead of a prompt (a fast typist, a paste) are kept up to this many bytes. */
const MAX_TYPE_AHEAD = 4096;

/**
 * A line reader over the browser terminal's keystrokes, for the sign-in before the shell: the
 * gateway writes a prompt, echoes what the user types (or nothing, for a password), and hands the
 * line over on Enter. Backspace, Ctrl-U (clear) and Ctrl-C / Ctrl-D (give up) work as at a login
 * prompt; arrow keys and other escape sequences are ignored. The answers live only in the returned
 * string: nothing here logs or keeps them.
 */
export class TerminalPrompt {
  readonly #write: (text: string) => void;
  readonly #decoder = new StringDecoder('utf8');
  /** Characters not yet consumed by a question. */
  #pending: string[] = [];
  #pendingBytes = 0;
  #question: { echo: boolean; line: string[]; resolve: (answer: string | null) => void } | null = null;
  /** Inside an escape sequence (ESC, then `[`/`O` and parameters up to a final letter). */
  #escape: 'none' | 'esc' | 'csi' = 'none';
  /** The last character ended a line with CR: a following LF is the same Enter (a pasted CRLF). */
  #afterCr = false;
  #closed = false;

  constructor(write: (text: string) => void) {
    this.#write = write;
  }

  /** Ask one question; resolves with the line, or null when the user gave up (Ctrl-C, Ctrl-D) or the prompt was closed. */
  ask(prompt: string, echo: boolean): Promise<string | null> {
    if (this.#closed) return Promise.resolve(null);
    this.#write(prompt);
    return new Promise((resolve) => {
      this.#question = { echo, line: [], resolve };
      const typed = this.#pending;
      this.#pending = [];
      this.#pendingBytes = 0;
      for (const ch of typed) this.#char(ch);
    });
  }

  /** Keystrokes from the terminal. */
  feed(data: Buffer): void {
    if (this.#closed) return;
    for (const ch of this.#decoder.write(data)) {
      if (this.#question) this.#char(ch);
      else if (this.#pendingBytes + ch.length <= MAX_TYPE_AHEAD) {
        this.#pending.push(ch);
        this.#pendingBytes += ch.length;
      }
    }
  }

  /** The sign-in is over: a question still open gets null, and later keystrokes are not read here. */
  close(): void {
    this.#closed = true;
    this.#pending = [];
    this.#finish(null);
  }

  #char(ch: string): void {
    const q = this.#question;
    if (!q) {
      this.#pending.push(ch);
      return;
    }
    if (this.#escape !== 'none') return this.#skipEscape(ch);
    const afterCr = this.#afterCr;
    this.#afterCr = false;
    switch (ch) {
      case '\r':
        this.#afterCr = true;
        return this.#enter();
      case '\n':
        return afterCr ? undefined : this.#enter();
      case '\x7f':
      case '\b':
        if (q.line.length > 0) {
          q.line.pop();
          if (q.echo) this.#write('\b \b');
        }
        return;
      case '\x15': // Ctrl-U: start the line again
        if (q.echo) this.#write('\b \b'.repeat(q.line.length));
        q.line = [];
        return;
      case '\x03': // Ctrl-C
        this.#write('^C\r\n');
        return this.#finish(null);
      case '\x04': // Ctrl-D on an empty line, as at a login prompt
        if (q.line.length === 0) {
          this.#write('\r\n');
          this.#finish(null);
        }
        return;
      case '\x1b':
        this.#escape = 'esc';
        return;
    }
    if (ch < ' ') return; // other control characters mean nothing in an answer
    if (q.line.length >= MAX_ANSWER) return;
    q.line.push(ch);
    if (q.echo) this.#write(ch);
  }

  #skipEscape(ch: string): void {
    if (this.#escape === 'esc') this.#escape = ch === '[' || ch === 'O' ? 'csi' : 'none';
    else if (ch >= '@' && ch <= '~') this.#escape = 'none';
  }

  #enter(): void {
    const q = this.#question!;
    this.#write('\r\n');
    this.#finish(q.line.join(''));
  }

  #finish(answer: string | null): void {
    const q = this.#question;
    this.#question = null;
    q?.resolve(answer);
  }
}
