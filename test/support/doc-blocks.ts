import fs from 'node:fs';
import path from 'node:path';

/** One fenced ```sh or ```bash block of a Markdown file. */
export interface DocBlock {
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  code: string;
  /** Set when the block is marked `<!-- docs-test: skip — reason -->`. */
  skip: string | null;
}

const SKIP = /^<!--\s*docs-test:\s*skip\s*(?:—|–|--|-|:)\s*(.+?)\s*-->\s*$/;

/**
 * The shell blocks of a Markdown file, each with its line and whether the line before it (blank
 * lines aside) marks it skipped. A skip marker without a reason is an error: the reason is what a
 * reader of the test output sees.
 */
export function shellBlocks(file: string, text: string): DocBlock[] {
  const lines = text.split('\n');
  const blocks: DocBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([\w-]*)/.exec(lines[i]!);
    if (!open) continue;
    const [, indent, fence, lang] = open;
    let end = i + 1;
    while (end < lines.length && !lines[end]!.trimStart().startsWith(fence!)) end++;
    if (lang === 'sh' || lang === 'bash') {
      let prev = i - 1;
      while (prev >= 0 && lines[prev]!.trim() === '') prev--;
      const marker = prev >= 0 ? lines[prev]!.trim() : '';
      let skip: string | null = null;
      if (/^<!--\s*docs-test/.test(marker)) {
        const m = SKIP.exec(marker);
        if (!m) throw new Error(`${file}:${prev + 1}: a docs-test marker needs a reason: <!-- docs-test: skip — why this block cannot run -->`);
        skip = m[1]!;
      }
      const code = lines.slice(i + 1, end).map((l) => (l.startsWith(indent!) ? l.slice(indent!.length) : l)).join('\n');
      blocks.push({ file, line: i + 1, code, skip });
    }
    i = end;
  }
  return blocks;
}

/** README.md and docs/*.md (not the ADRs: they record what was decided, with the commands of their day). */
export function docFiles(repo: string): string[] {
  const docs = fs.readdirSync(path.join(repo, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`);
  return ['README.md', ...docs];
}
