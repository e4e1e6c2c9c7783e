import { describe, expect, it } from 'vitest';
import { TerminalPrompt } from '../src/browser/terminal-prompt.ts';

/** The sign-in line reader of the browser terminal: what is echoed and what the answer is. */
function prompt() {
  let screen = '';
  const p = new TerminalPrompt((t) => void (screen += t));
  return { p, screen: () => screen, type: (s: string) => p.feed(Buffer.from(s, 'utf8')) };
}

describe('terminal sign-in prompt', () => {
  it('echoes a visible answer, edits it with backspace and Ctrl-U, and skips arrow keys', async () => {
    const t = prompt();
    const answer = t.p.ask('login as: ', true);
    t.type('bob\x7fx\x1b[Dy\x15al\u00e9x\r');
    expect(await answer).toBe('al\u00e9x');
    expect(t.screen()).toBe(`login as: bob\b \bxy${'\b \b'.repeat(4)}al\u00e9x\r\n`);
  });

  it('echoes nothing of a password, and keeps keys typed ahead of the question (a pasted CRLF is one Enter)', async () => {
    const t = prompt();
    t.type('s3cr\u00eat\r\nnext\r');
    const answer = await t.p.ask('Password: ', false);
    expect(answer).toBe('s3cr\u00eat');
    expect(await t.p.ask('Code: ', true)).toBe('next');
    expect(t.screen()).toBe('Password: \r\nCode: next\r\n');
  });

  it('gives up on Ctrl-C, and on Ctrl-D at an empty line', async () => {
    const t = prompt();
    const first = t.p.ask('login as: ', true);
    t.type('ab\x03');
    expect(await first).toBeNull();
    const second = t.p.ask('login as: ', true);
    t.type('\x04');
    expect(await second).toBeNull();
  });

  it('a UTF-8 character split across frames is one character', async () => {
    const t = prompt();
    const answer = t.p.ask('> ', true);
    const bytes = Buffer.from('\u2713\r', 'utf8');
    t.p.feed(bytes.subarray(0, 1));
    t.p.feed(bytes.subarray(1));
    expect(await answer).toBe('\u2713');
  });

  it('after close, questions answer null and keystrokes are not kept', async () => {
    const t = prompt();
    const open = t.p.ask('Password: ', false);
    t.p.close();
    expect(await open).toBeNull();
    t.type('later\r');
    expect(await t.p.ask('x', true)).toBeNull();
  });
});
