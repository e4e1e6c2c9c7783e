import { describe, expect, it } from 'vitest';
import { shellBlocks } from '../support/doc-blocks.ts';

describe('shell blocks of the docs (what the docs test runs)', () => {
  const md = ['# T', '', '```sh', 'echo one', '```', '', '<!-- docs-test: skip — needs a real AD -->', '', '```bash', 'ldapsearch', '```', '```text', 'not run', '```', '- a list', '  ```sh', '  echo indented', '  ```', '```js', 'x()', '```'].join('\n');

  it('finds sh and bash blocks with their line, the skip reason, and strips a list indent', () => {
    expect(shellBlocks('a.md', md)).toEqual([
      { file: 'a.md', line: 3, code: 'echo one', skip: null },
      { file: 'a.md', line: 9, code: 'ldapsearch', skip: 'needs a real AD' },
      { file: 'a.md', line: 16, code: 'echo indented', skip: null },
    ]);
  });

  it('a skip marker without a reason is refused, naming its line', () => {
    expect(() => shellBlocks('b.md', '<!-- docs-test: skip -->\n```sh\nx\n```')).toThrow('b.md:1: a docs-test marker needs a reason');
  });
});
