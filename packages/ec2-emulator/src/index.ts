// Public entry points: start an emulator in-process (`startEc2Emulator`) or as the
// long-running dev sandbox (`runEc2Emulator`, wired into the Stagedoor CLI).

import type { AddressInfo } from 'node:net';
import { createControl } from './control.ts';
import type { Ec2EmulatorControl } from './control.ts';
import { createControlHandler } from './control-http.ts';
import { EmulatorCore } from './core.ts';
import { DEFAULT_ACCOUNT_ID, seedDefaultAccount } from './defaults.ts';
import { DEFAULT_DELAYS } from './lifecycle.ts';
import { readSnapshotFile, StatePersistence } from './persistence.ts';
import { createEmulatorServer } from './server.ts';
import { restoreSnapshot, takeSnapshot } from './snapshot.ts';
import type { Delays } from './types.ts';

export interface Ec2EmulatorOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: any free port. */
  port?: number;
  /** Default us-east-1. */
  region?: string;
  /** Default 123456789012. */
  accountId?: string;
  /** When set, state is loaded from this JSON file and saved to it after changes and on close. */
  statePath?: string;
  /** Quiet period before a change is written to statePath. Default 250 ms. */
  persistDebounceMs?: number;
  /** State transition delays in emulated ms. */
  delays?: Partial<Delays>;
  /** Base clock in ms; fast-forward adds an offset on top. Default Date.now. */
  clock?: () => number;
  /** Seed for probabilistic fault injection. */
  faultSeed?: number;
  /** Where persistence errors are reported. Default console.error. */
  onError?: (error: Error) => void;
}

export interface Ec2Emulator {
  /** Endpoint for the AWS SDK / CLI, e.g. http://127.0.0.1:4566 */
  url: string;
  port: number;
  host: string;
  region: string;
  control: Ec2EmulatorControl;
  close(): Promise<void>;
}

export async function startEc2Emulator(options: Ec2EmulatorOptions = {}): Promise<Ec2Emulator> {
  const host = options.host ?? '127.0.0.1';
  const region = options.region ?? 'us-east-1';
  const delays: Delays = { ...DEFAULT_DELAYS, ...options.delays };
  const core = new EmulatorCore({
    region,
    accountId: options.accountId ?? DEFAULT_ACCOUNT_ID,
    delays,
    clock: options.clock,
    faultSeed: options.faultSeed,
  });
  const snapshot = options.statePath ? await readSnapshotFile(options.statePath) : undefined;
  if (snapshot) {
    restoreSnapshot(core, snapshot);
    // Delays given explicitly to this start win over the saved ones.
    if (options.delays) Object.assign(core.store.delays, options.delays);
  } else {
    seedDefaultAccount(core.store);
  }

  const onError = options.onError ?? ((error: Error) => console.error(`ec2-emulator: ${error.message}`));
  const persistence = options.statePath
    ? new StatePersistence(options.statePath, () => takeSnapshot(core), options.persistDebounceMs ?? 250, onError)
    : undefined;
  if (persistence) {
    core.onChange(() => persistence.schedule());
    // A first save makes a new sandbox's state file exist right away.
    if (!snapshot) persistence.schedule();
  }
  const control = createControl(core, () => persistence?.flush() ?? Promise.resolve());
  const server = createEmulatorServer(core, createControlHandler(control));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${urlHost}:${port}`,
    port,
    host,
    region,
    control,
    close() {
      closing ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        await persistence?.flush();
      })();
      return closing;
    },
  };
}

export interface RunEc2EmulatorOptions {
  port?: number;
  host?: string;
  statePath?: string;
  region?: string;
  /** Receives the one startup line. Default console.log. */
  log?: (line: string) => void;
}

/** Starts the emulator for the dev sandbox and logs one line saying where it listens. */
export async function runEc2Emulator(options: RunEc2EmulatorOptions = {}): Promise<Ec2Emulator> {
  const emulator = await startEc2Emulator({
    port: options.port,
    host: options.host,
    statePath: options.statePath,
    region: options.region,
  });
  const log = options.log ?? ((line: string) => console.log(line));
  const state = options.statePath ? `, state ${options.statePath}` : '';
  log(`EC2 emulator listening on ${emulator.url} (region ${emulator.region}${state}; control API at ${emulator.url}/_emulator/)`);
  return emulator;
}

export { DEMO_AMI_ID, DEFAULT_ACCOUNT_ID } from './defaults.ts';
export { DEFAULT_DELAYS } from './lifecycle.ts';
export type { Ec2EmulatorControl, DefaultNetwork } from './control.ts';
export type { FaultRuleView } from './faults.ts';
export type {
  CallCounters,
  CapacityLimit,
  Delays,
  FaultSpec,
  ImageRecord,
  ImageSeed,
  InstanceRecord,
  InstanceStateName,
  LaunchTemplateData,
  LaunchTemplateRecord,
  LaunchTemplateSeed,
  SecurityGroupRecord,
  SecurityGroupSeed,
  SubnetRecord,
  SubnetSeed,
  Tag,
} from './types.ts';
