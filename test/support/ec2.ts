import { startEc2Emulator, type Ec2Emulator, type Ec2EmulatorOptions } from '../../packages/ec2-emulator/src/index.ts';
import { AwsEc2Provider, type AwsEc2Options } from '../../apps/broker/src/providers/cloud/aws-ec2.ts';

export const TEST_ACCESS_KEY = 'AKIATESTSTAGEDOOR01';
export const TEST_SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYTESTSECRET';

/** An emulator with short transitions, for one test file. */
export function startTestEmulator(opts: Ec2EmulatorOptions = {}): Promise<Ec2Emulator> {
  return startEc2Emulator({ delays: { pendingMs: 5_000, stoppingMs: 5_000, shuttingDownMs: 5_000 }, onError: () => undefined, ...opts });
}

/**
 * An emulator clock that moves only by `emu.control.advanceTime`, for tests that assert states
 * (pending, running) between their own time steps: on a loaded machine the 5 s of a transition can
 * pass in real time between two lines of a test (a whole sync's instances went from pending to
 * running between two syncs that way).
 */
export function frozenClock(at = Date.now()): () => number {
  return () => at;
}

export function providerFor(emu: Ec2Emulator, opts: Partial<AwsEc2Options> = {}): AwsEc2Provider {
  return new AwsEc2Provider({ region: emu.region, endpoint: emu.url, credentials: { accessKeyId: TEST_ACCESS_KEY, secretAccessKey: TEST_SECRET }, backoffBaseMs: 5, ...opts });
}
