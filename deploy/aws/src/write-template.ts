import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildApp, STACK_NAME } from './app.ts';

/**
 * `npm run synth:aws`: the CloudFormation template of the default deployment, a release artifact
 * (dist/stagedoor-aws.template.json at the repository root), deployable with plain CloudFormation.
 * An optional argument is the output path.
 */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const out = resolve(process.argv[2] ?? `${root}/dist/stagedoor-aws.template.json`);
const outdir = mkdtempSync(`${tmpdir()}/stagedoor-cdk-`);
try {
  const { app } = buildApp({ outdir });
  const template: unknown = app.synth().getStackByName(STACK_NAME).template;
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(template, null, 2)}\n`);
  console.log(`wrote ${out}`);
} finally {
  rmSync(outdir, { recursive: true, force: true });
}
