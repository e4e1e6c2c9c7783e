import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { cliActor, ensurePrivateDir, ensurePrivateFile, type Broker, type Config } from '@stagedoor/broker';
import { DEMO_AMI_ID, runEc2Emulator } from '@stagedoor/ec2-emulator';

export const SANDBOX_PROVIDER = 'sandbox';
/**
 * The sandbox imports only instances tagged `site=sandbox` (its hand launches carry the tag), so a
 * provider of the same emulator with another `site` — docs/examples/studio.yaml's `site: [studio]` —
 * sees other instances, and the two live side by side (ADR 0018). A sandbox registered before this
 * filter gets it when that loses no instance (narrowOldSandbox).
 */
export const SANDBOX_TAG_FILTER = { site: ['sandbox'] };
const SANDBOX_CREDENTIALS = { mode: 'access-key' as const, accessKeyId: 'AKIASANDBOX000000000', secretAccessKey: 'sandbox-secret-the-emulator-ignores' };

/**
 * `stagedoor dev --sandbox`: the EC2 emulator beside the broker, registered as the aws-ec2 provider
 * "sandbox", so a new user sees provisioning work with no AWS account. Its state lives in the data
 * directory and survives restarts.
 */
export async function startSandbox(broker: Broker, config: Config, log: Logger): Promise<{ url: string; close(): Promise<void> }> {
  const emu = await runEc2Emulator({
    port: config.sandbox.ec2Port,
    host: '127.0.0.1',
    statePath: path.join(config.dataDir, 'ec2-sandbox.json'),
    log: (line) => log.info({ area: 'sandbox' }, line),
  });
  const actor = cliActor('dev --sandbox');
  const existing = await broker.services.providers.findByName(SANDBOX_PROVIDER);
  if (!existing) {
    await broker.services.providers.create(actor, { kind: 'aws-ec2', name: SANDBOX_PROVIDER, region: emu.region, endpoint: emu.url, credentials: SANDBOX_CREDENTIALS, tagFilter: SANDBOX_TAG_FILTER, syncIntervalSeconds: 30, enabled: true });
  } else {
    if (existing.endpoint !== emu.url) await broker.services.providers.update(actor, existing.id, { endpoint: emu.url });
    if (Object.keys(existing.tagFilter).length === 0) await narrowOldSandbox(broker, existing.id, emu, log);
  }
  return { url: emu.url, close: () => emu.close() };
}

/**
 * A sandbox registered before it had a tag filter sees every instance of the emulator, so the
 * example could not be applied beside it (refused as overlapping, ADR 0018). When none of its
 * instances would be lost (all already carry site=sandbox, or there are none) it gets the filter;
 * otherwise the log says what to do.
 */
async function narrowOldSandbox(broker: Broker, id: string, emu: { control: { instances(): { state: string; tags: { key: string; value: string }[] }[] } }, log: Logger): Promise<void> {
  const live = emu.control.instances().filter((i) => i.state !== 'terminated');
  if (live.every((i) => i.tags.some((t) => t.key === 'site' && t.value === 'sandbox'))) {
    await broker.services.providers.update(cliActor('dev --sandbox'), id, { tagFilter: SANDBOX_TAG_FILTER });
    return;
  }
  log.warn({ area: 'sandbox', instances: live.length }, 'provider "sandbox" has no tag filter and sees every emulator instance: tag them site=sandbox and PATCH its tagFilter to {"site":["sandbox"]}, or another provider on this emulator is refused as overlapping');
}

export function sandboxBanner(url: string): string[] {
  return [`Sandbox: EC2 emulator at ${url}, registered as provider "${SANDBOX_PROVIDER}" (demo AMI ${DEMO_AMI_ID})`];
}

/**
 * `stagedoor dev` needs no setup, so when STAGEDOOR_SECRET_KEY is unset it keeps a generated key in
 * the data directory (0700) as `secret.key` (0600; one left readable by others is tightened, with a
 * log line). Production roles never do this: they require the variable.
 */
export function devSecretKey(dataDir: string, log?: Logger): Buffer {
  const file = path.join(dataDir, 'secret.key');
  ensurePrivateDir(dataDir, log);
  if (!fs.existsSync(file)) fs.writeFileSync(file, randomBytes(32).toString('hex'), { mode: 0o600, flag: 'wx' });
  ensurePrivateFile(file, log);
  return Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'hex');
}
