// Runs the CLI as bin/stagedoor.js does (tsx), with one more module hook, registered after tsx so
// that it sees every resolved module: each URL is appended to $TRACE_IMPORTS_FILE. Used by
// apps/cli/test/startup.test.ts to check which modules a command loads.
import { register } from 'node:module';
import { register as registerTsx } from 'tsx/esm/api';

registerTsx();
const hook = `
import fs from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  fs.appendFileSync(process.env.TRACE_IMPORTS_FILE, r.url + '\\n');
  return r;
}`;
register(`data:text/javascript,${encodeURIComponent(hook)}`);
const { main } = await import(new URL('../../apps/cli/src/main.ts', import.meta.url).href);
await main(['node', 'stagedoor', ...process.argv.slice(2)]);
