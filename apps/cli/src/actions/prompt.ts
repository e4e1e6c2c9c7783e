import { CliError } from '../cli-error.ts';

/**
 * Ask for a secret on the terminal without echoing it: the terminal goes to raw mode and this reads
 * key by key (Enter ends, Backspace erases, Ctrl-C and Ctrl-D give up), writing the prompt to stderr
 * so that stdout stays clean for scripts.
 */
export async function promptHidden(prompt: string, input: NodeJS.ReadStream = process.stdin, output: NodeJS.WriteStream = process.stderr): Promise<string> {
  // Raw mode before the prompt shows: whatever is typed after it is never echoed.
  input.setRawMode(true);
  output.write(prompt);
  input.resume();
  input.setEncoding('utf8');
  try {
    return await new Promise<string>((resolve, reject) => {
      let value = '';
      const onData = (chunk: string) => {
        for (const ch of chunk) {
          if (ch === '\r' || ch === '\n') {
            input.off('data', onData);
            return resolve(value);
          }
          if (ch === '\u0003' || ch === '\u0004') {
            input.off('data', onData);
            return reject(new CliError('cancelled'));
          }
          if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
          else value += ch;
        }
      };
      input.on('data', onData);
    });
  } finally {
    input.setRawMode(false);
    input.pause();
    output.write('\n');
  }
}

export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}
