import type { DbOrTx } from '../../db/database.ts';
import type { PowerState } from '../../db/schema/providers.ts';
import type { CloudInstance } from '../../providers/cloud/cloud-provider.ts';
import type { WorkstationsRepository } from '../workstations/workstations.repository.ts';
import { planSync, type KnownWorkstation } from './sync-plan.ts';

export interface Applied {
  created: number;
  updated: number;
  terminated: number;
  /** Machines whose power state changed (their history turned over), with the state written. */
  powerChanged: { id: string; powerState: PowerState }[];
}

/**
 * Write what the cloud answered, the one way Stagedoor does it (inventory sync, the power follower,
 * the pool reconciler's refresh): plan it against the broker's rows (`planSync`), write the updates,
 * and turn the power history over for every machine whose state changed.
 *
 * `scope: 'provider'` — the answer lists every instance of the provider (a sync): new instances are
 * imported and known machines missing from it are marked terminated. `scope: 'these'` — an answer
 * about the `known` machines only: they are updated, and nothing is said of any other (an instance
 * in the answer whose row is not in `known` is left alone, never imported twice).
 */
export async function applyObserved(
  repo: WorkstationsRepository,
  providerId: string,
  known: KnownWorkstation[],
  observed: CloudInstance[],
  at: Date,
  tx: DbOrTx,
  scope: 'provider' | 'these',
): Promise<Applied> {
  const plan = planSync(known, observed);
  const whole = scope === 'provider';
  const created = whole ? await repo.insertMany(providerId, plan.create, at, tx) : [];
  await repo.updateMany(plan.update, at, tx);
  const vanished = whole ? await repo.setPowerState(plan.vanished, 'terminated', at, tx) : [];
  const powerChanged = [
    ...created.map((c) => ({ id: c.id, powerState: c.powerState as PowerState })),
    ...plan.update.filter((u) => u.powerChanged).map((u) => ({ id: u.id, powerState: u.fields.powerState })),
    ...vanished.map((v) => ({ id: v.id, powerState: 'terminated' as const })),
  ];
  await repo.turnOverPowerHistory(powerChanged.map((c) => c.id), at, tx);
  return { created: created.length, updated: plan.update.length, terminated: vanished.length, powerChanged };
}
